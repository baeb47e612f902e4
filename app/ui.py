"""The Gradio staff demo: streaming chat, example prompts and the debug panel.

A thin adapter over ``Assistant.stream``; per-browser state (the session id) lives in ``gr.State``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

from app.orchestrator import Assistant
from app.pii import mask
from app.schema import Message, Reply, Token

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


def debug_view(reply: Reply) -> dict[str, Any]:
    """What the staff panel's JSON shows for a turn (PII masked, empty fields left out)."""
    entities = {k: [mask(v) for v in vs] for k, vs in vars(reply.entities).items() if vs} if reply.entities else {}
    return {
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
    }


def summary_markdown(reply: Reply) -> str:
    """The panel's headline: route, intent and confidence, guard verdict, and per-stage timings."""
    guard = "accepted" if reply.guard.accepted else "rejected: " + ", ".join(reply.guard.reasons)
    timings = " | ".join(f"{k} {1000 * v:.0f} ms" for k, v in reply.timings.items())
    tools = ", ".join(next(iter(a.to_dict())) for a in reply.actions) or "none"
    return (f"**Route** `{reply.route}` ({reply.route_reason})  \n"
            f"**Intent** `{reply.intent}` at {reply.confidence:.2f}  \n"
            f"**Reply** {reply.generated_by}; guard {guard}  \n"
            f"**Tool calls** {tools}  \n**Timings** {timings}")


def passage_rows(reply: Reply) -> list[list[Any]]:
    return [[p.score, p.doc_id, p.section or "(intro)", p.text[:160]] for p in reply.passages]


def build_ui(assistant: Assistant) -> Any:
    import gradio as gr

    def chat(message: str, history: list[dict[str, Any]], session_id: str) -> Iterator[tuple[Any, ...]]:
        history = [*list(history or []), {"role": "user", "content": message}, {"role": "assistant", "content": ""}]
        skip = (gr.skip(), gr.skip(), gr.skip())
        yield history, "", *skip
        for event in assistant.stream(Message(session_id, message, channel="demo")):
            if isinstance(event, Token):
                history[-1] = {"role": "assistant", "content": history[-1]["content"] + event.text}
                yield history, "", *skip
            else:
                history[-1] = {"role": "assistant", "content": event.text}
                yield history, "", summary_markdown(event), passage_rows(event), debug_view(event)

    def reset() -> tuple[Any, ...]:
        return [], str(uuid.uuid4()), "", [], {}

    with gr.Blocks(title="Shopdesk staff demo", analytics_enabled=False) as demo:
        session = gr.State(lambda: str(uuid.uuid4()))
        gr.Markdown(f"## Shopdesk staff demo: {assistant.settings.shop_name}\n"
                    "Chat as a shopper; the panel on the right shows how each turn was handled. "
                    "Demo customer: Ada Park, ada.park@example.com, orders SD-10001 to SD-10005.")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Conversation", height=460, elem_id="chat")
                box = gr.Textbox(label="Message", placeholder="Type as a shopper would...", elem_id="msg")
                with gr.Row():
                    send = gr.Button("Send", variant="primary", elem_id="send")
                    clear = gr.Button("Reset conversation")
                gr.Examples(EXAMPLES, inputs=box, label="Example prompts")
            with gr.Column(scale=2):
                gr.Markdown("### Staff panel")
                summary = gr.Markdown(elem_id="summary")
                passages = gr.Dataframe(headers=["score", "doc", "section", "text"], label="Retrieved passages",
                                        interactive=False, wrap=True, elem_id="passages")
                panel = gr.JSON(label="Turn details", elem_id="panel")
        outputs = [chatbot, box, summary, passages, panel]
        for trigger in (box.submit, send.click):
            trigger(chat, [box, chatbot, session], outputs, api_name=False)
        clear.click(reset, None, [chatbot, session, summary, passages, panel], api_name=False)
    return demo
