"""The Gradio staff demo: streaming chat, example prompts, "act as customer", the debug panel,
thumbs up/down stored with the turn, reset, the handoff tickets, and a stats tab over a period.

A thin adapter over ``Assistant.stream``; per-browser state (session id, customer token, the turn id
of each reply) lives in ``gr.State``. Staff numbers come from ``app.stats``.
"""

# no ``from __future__ import annotations``: Gradio reads the ``gr.LikeData`` hint of ``rate`` at run time
import os
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from app.metrics import Metrics
from app.orchestrator import Assistant
from app.pii import mask
from app.schema import Message, Reply, Token
from app.stats import StaffQueries, StaffStats, sign_customer_token
from knowledge_base.errors import KnowledgeBaseError

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

EXAMPLES = [
    "hi",
    "where is my order SD-10002?",
    "ada.park@example.com",
    "how long does shipping take to Canada?",
    "what is your return policy for headphones?",
    "I want to talk to a person",
    "what's the weather in Paris?",
]
PERIODS = {"Last 24 hours": 1, "Last 7 days": 7, "Last 30 days": 30, "Last 365 days": 365}
ANONYMOUS = "Shopper (not signed in)"


def debug_view(reply: Reply) -> dict[str, Any]:
    """What the staff panel's JSON shows for a turn (PII masked, empty fields left out)."""
    entities = {k: [mask(v) for v in vs] for k, vs in vars(reply.entities).items() if vs} if reply.entities else {}
    return {
        "turn_id": reply.turn_id,
        "intent": reply.intent,
        "confidence": reply.confidence,
        "route": reply.route,
        "route_reason": reply.route_reason,
        "facts": reply.facts_kind,
        "verified": reply.verified,
        "handoff": reply.handoff,
        "tool_calls": [a.to_dict() for a in reply.actions],
        "entities": entities,
        "sources": list(reply.sources),
        "generated_by": reply.generated_by,
        "guard": {"accepted": reply.guard.accepted, "reasons": list(reply.guard.reasons)},
        "choices": list(reply.choices),
        "answerability": reply.answerability,
    }


def summary_markdown(reply: Reply) -> str:
    """The panel's headline: route, intent and confidence, guard verdict, and per-stage timings."""
    guard = "accepted" if reply.guard.accepted else "rejected: " + ", ".join(reply.guard.reasons)
    timings = " | ".join(f"{k} {1000 * v:.0f} ms" for k, v in reply.timings.items())
    tools = ", ".join(next(iter(a.to_dict())) for a in reply.actions) or "none"
    return (f"**Route** `{reply.route}` ({reply.route_reason})  \n"
            f"**Intent** `{reply.intent}` at {reply.confidence:.2f}  \n"
            + (f"**Answerability** {answerability_line(reply.answerability)}  \n" if reply.answerability else "")
            + f"**Reply** {reply.generated_by}; guard {guard}  \n"
            f"**Tool calls** {tools}  \n**Timings** {timings}")


def answerability_line(a: dict[str, Any]) -> str:
    """Why the FAQ answered or said it does not know, in one line: the rule's reason and its numbers."""
    verdict = "answered" if a.get("answerable") else "declined"
    if a.get("probability") is None:  # the cosine floor decided
        return f"{verdict} ({a.get('reason')}): best cosine {a.get('similarity'):.2f}"
    features = ", ".join(f"{k} {v:.2f}" for k, v in (a.get("features") or {}).items())
    sign = ">=" if a.get("answerable") else "<"
    # precedents are silent on sections written after they were labelled (knowledge_base/precedents.py)
    silent = "" if "precedent" in (a.get("features") or {}) else "; no precedent for these passages"
    return f"{verdict}: probability {a['probability']:.2f} {sign} {a['threshold']:.2f} ({features}){silent}"


def label_faq(assistant: Assistant, question: str, answerable: bool) -> str:
    """The staff panel's FAQ label buttons (knowledge_base/labels.py): the verdict kept, and what the FAQ
    decides now, or why nothing was kept."""
    if not (question or "").strip():
        return "Ask the FAQ something first: the label is for the last question it answered or declined."
    faq = assistant.c.faq
    if faq.label_store is None:
        return "Labels are off: the labelled questions are turned off (SHOPDESK_RETRIEVAL_PRECEDENTS=none)."
    try:
        label, decision = faq.label(question, answerable, assistant.c.clock.now().isoformat(timespec="seconds"))
    except KnowledgeBaseError as exc:
        return f"Not labelled: {exc}"
    kind = "answered by the help centre" if answerable else "not answered by the help centre"
    return f"Labelled \"{label.text}\" as {kind}. The FAQ now: {answerability_line(decision)}."


def passage_rows(reply: Reply) -> list[list[Any]]:
    return [[p.score, p.doc_id, p.section or "(intro)", p.text[:160]] for p in reply.passages]


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.0f}%"


def stats_markdown(st: StaffStats) -> str:
    lat = " · ".join(f"{k} {v:.0f} ms" if v is not None else f"{k} n/a" for k, v in st.latency_ms.items())
    return (f"**{st.since:%Y-%m-%d %H:%M} to {st.until:%Y-%m-%d %H:%M} UTC**\n\n"
            f"| Measure | Value |\n|---|---|\n| Conversations | {st.conversations} ({st.turns} turns) |\n"
            f"| Resolved without a human (containment) | {_pct(st.containment_rate)} ({st.contained}) |\n"
            f"| Handed to a human (ticket) | {_pct(st.handoff_rate)} ({st.handed_off}) |\n"
            f"| Thumbs up | {_pct(st.thumbs_up_rate)} ({st.thumbs_up} up, {st.thumbs_down} down) |\n"
            f"| Turn latency | {lat} |\n"
            f"| Questions the FAQ could not answer | {len(st.unanswered)} |")


def unanswered_series(st: StaffStats) -> list[dict[str, Any]]:
    """Unanswered questions per day (per week beyond a month), every bucket present, zeros included:
    a bar chart of only the days that had some would hide the quiet ones (and one bar alone draws none)."""
    start, end = st.since.date(), st.until.date()
    step = 1 if (end - start).days <= 31 else 7
    counts = {date.fromisoformat(d["day"]): d["questions"] for d in st.unanswered_per_day}
    series = []
    day = start
    while day <= end:
        bucket = [day + timedelta(days=i) for i in range(step)]
        label = f"{day:%b} {day.day}" if step == 1 else f"week of {day:%b} {day.day}"
        series.append({"day": label, "questions": sum(counts.get(d, 0) for d in bucket)})
        day += timedelta(days=step)
    return series


def build_ui(assistant: Assistant, metrics: Metrics | None = None) -> Any:
    import gradio as gr
    import pandas as pd

    engine = assistant.c.sessions.engine
    staff = StaffQueries(engine)
    clock = assistant.c.clock

    def chat(message: str, history: list[dict[str, Any]], session_id: str, token: str,
             turn_ids: dict[int, int]) -> Iterator[tuple[Any, ...]]:
        skip = (gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip())
        if not (message or "").strip():  # Send on an empty box (or pressed twice): nothing to say
            yield gr.skip(), gr.skip(), *skip
            return
        history = [*list(history or []), {"role": "user", "content": message}, {"role": "assistant", "content": ""}]
        yield history, "", *skip  # the box is emptied once: what staff type while the reply streams stays
        for event in assistant.stream(Message(session_id, message, channel="demo", customer_token=token or None)):
            if isinstance(event, Token):
                history[-1] = {"role": "assistant", "content": history[-1]["content"] + event.text}
                yield history, gr.skip(), *skip
            else:
                if metrics:
                    metrics.observe(event, "demo")
                history[-1] = {"role": "assistant", "content": event.text}
                ids = {**turn_ids, len(history) - 1: event.turn_id} if event.turn_id else turn_ids
                asked = message if event.route == "faq" else gr.skip()  # what the label buttons label
                yield (history, gr.skip(), summary_markdown(event), passage_rows(event), debug_view(event), ids,
                       asked)

    def rate(turn_ids: dict[int, int], session_id: str, comment: str, data: gr.LikeData) -> str:
        index = data.index if isinstance(data.index, int) else data.index[0]
        turn_id = turn_ids.get(index)
        if turn_id is None or data.liked not in (True, False):
            return "Rate a reply of this conversation (thumbs under it)."
        assistant.c.sessions.save_feedback(session_id, turn_id, 1 if data.liked else -1, comment or "", "demo",
                                           clock.now())
        if metrics:
            metrics.feedback.labels("up" if data.liked else "down").inc()
        rating = "up" if data.liked else "down"
        return f"Saved thumbs {rating} for turn {turn_id}" + (" with your comment." if comment else ".")

    def reset() -> tuple[Any, ...]:
        return [], str(uuid.uuid4()), "", [], {}, {}, "", "", ""

    def act_as(choice: str) -> tuple[Any, ...]:
        """Staff pick a demo customer: a token signed as the shop's site would, and a fresh chat."""
        if not choice or choice == ANONYMOUS:
            note = "Chatting as an anonymous shopper: order lookups ask for the order number and email or zip."
            return "", note, *reset()
        customer_id = choice.rsplit("(", 1)[-1].rstrip(")")
        token = sign_customer_token(assistant.settings, customer_id, clock.now())
        note = f"Signed in as **{choice}** with a signed customer token (valid 30 minutes); new conversation."
        return token, note, *reset()

    def tickets() -> list[list[Any]]:
        return [[t["id"], t["created_at"], t["status"], t["customer_id"], t["session_id"], t["summary"]]
                for t in staff.handoff_tickets()]

    def stats(period: str) -> tuple[Any, ...]:
        until = clock.now()
        st = staff.stats(until - timedelta(days=PERIODS.get(period, 7)), until)
        series = unanswered_series(st)
        plot = gr.BarPlot(value=pd.DataFrame(series, columns=["day", "questions"]), sort=[d["day"] for d in series])
        rows = [[u["at"], u["question"]] for u in st.unanswered]
        return stats_markdown(st), plot, rows

    customers = [ANONYMOUS] + [f"{name} ({cid})" for cid, name in staff.customers()]
    with gr.Blocks(title="Shopdesk staff demo", analytics_enabled=False) as demo:
        session = gr.State(lambda: str(uuid.uuid4()))
        token = gr.State("")
        turn_ids = gr.State(dict)
        gr.Markdown(f"## Shopdesk staff demo: {assistant.settings.shop_name}\n"
                    "Chat as a shopper; the panel on the right shows how each turn was handled. "
                    "Demo customer: Ada Park, ada.park@example.com, orders SD-10001 to SD-10005. "
                    "[Shop page with the widget](/) · [API docs](/docs)")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab"), gr.Row():
                with gr.Column(scale=3):
                    who = gr.Dropdown(customers, value=ANONYMOUS, label="Act as customer", elem_id="act-as")
                    who_note = gr.Markdown(elem_id="act-as-note")
                    chatbot = gr.Chatbot(label="Conversation", height=460, elem_id="chat")
                    box = gr.Textbox(label="Message", placeholder="Type as a shopper would...", elem_id="msg")
                    with gr.Row():
                        send = gr.Button("Send", variant="primary", elem_id="send")
                        clear = gr.Button("Reset conversation", elem_id="reset")
                    comment = gr.Textbox(label="Feedback comment (optional, saved with your next thumbs up "
                                               "or down)", elem_id="feedback-comment")
                    feedback_note = gr.Markdown(elem_id="feedback-note")
                    gr.Examples(EXAMPLES, inputs=box, label="Example prompts")
                with gr.Column(scale=2):
                    gr.Markdown("### Staff panel")
                    summary = gr.Markdown(elem_id="summary")
                    passages = gr.Dataframe(headers=["score", "doc", "section", "text"],
                                            label="Retrieved passages", interactive=False, wrap=True,
                                            elem_id="passages")
                    panel = gr.JSON(label="Turn details", elem_id="panel")
                    gr.Markdown("Was the last FAQ decision wrong? Teach it (it learns at once, for every shopper):")
                    with gr.Row():
                        not_there = gr.Button("The help centre does not answer that", elem_id="label-unanswerable")
                        there = gr.Button("The answer was there", elem_id="label-answerable")
                    label_note = gr.Markdown(elem_id="label-note")
            with gr.Tab("Handoff tickets", id="tickets-tab") as tickets_tab:
                refresh_tickets = gr.Button("Refresh", elem_id="refresh-tickets")
                ticket_table = gr.Dataframe(headers=["ticket", "opened (UTC)", "status", "customer", "session",
                                                     "summary (masked)"], interactive=False, wrap=True,
                                            elem_id="tickets")
            with gr.Tab("Stats", id="stats-tab") as stats_tab:
                with gr.Row():
                    period = gr.Dropdown(list(PERIODS), value="Last 7 days", label="Period", elem_id="period")
                    refresh_stats = gr.Button("Refresh", elem_id="refresh-stats")
                stats_md = gr.Markdown(elem_id="stats")
                plot = gr.BarPlot(x="day", y="questions", title="Questions the FAQ could not answer",
                                  elem_id="unanswered-plot")
                unanswered = gr.Dataframe(headers=["asked (UTC)", "question (masked)"], label="Unanswered questions",
                                          interactive=False, wrap=True, elem_id="unanswered")
        last_faq = gr.State("")
        outputs = [chatbot, box, summary, passages, panel, turn_ids, last_faq]
        for trigger in (box.submit, send.click):  # sent while a reply streams: sent when it is done, not dropped
            trigger(chat, [box, chatbot, session, token, turn_ids], outputs, api_name=False, trigger_mode="always_last")
        chatbot.like(rate, [turn_ids, session, comment], feedback_note, api_name=False)
        not_there.click(lambda q: label_faq(assistant, q, False), last_faq, label_note, api_name=False)
        there.click(lambda q: label_faq(assistant, q, True), last_faq, label_note, api_name=False)
        reset_outputs = [chatbot, session, summary, passages, panel, turn_ids, feedback_note, last_faq, label_note]
        clear.click(reset, None, reset_outputs, api_name=False)
        who.change(act_as, who, [token, who_note, *reset_outputs], api_name=False)
        for trigger in (refresh_tickets.click, tickets_tab.select):
            trigger(tickets, None, ticket_table, api_name=False)
        for trigger in (refresh_stats.click, stats_tab.select, period.change):
            trigger(stats, period, [stats_md, plot, unanswered], api_name=False)
    return demo
