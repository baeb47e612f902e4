"""Personal data (issue 10): emails, phones, street addresses and payment details typed by shoppers are
masked everywhere they are kept or shown to staff - the log file (at DEBUG), the stored turns' redacted
copy and the rest of the assistant's tables, the staff API and debug panel, and the eval report.

A conversation set full of such data runs through the HTTP API and through the eval runner with
logging captured to a file; then a scanner looks for every planted value (and anything that looks
like an unmasked email or card number) in all of it. The scanner is checked first on the raw text,
so the test cannot pass by scanning for nothing.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.api import create_app
from app.errors import ModelError
from app.factory import Mode, Models
from app.logs import FORMAT, mask_handler
from app.pii import mask
from app.schema import Message
from app.ui import debug_view, passage_rows, summary_markdown
from evals.report import write_report
from evals.runner import run_paths

REPO = Path(__file__).resolve().parents[1]
STAFF_TOKEN = "staff-token-for-tests-0123456789"

# what the shoppers below give away, by kind
EMAILS = ["ada@example.com", "zoe.quinn@mailbox.example.org", "ana.lopez@example.es", "ben.o@example.net"]
PHONES = ["+1 (415) 555-0142", "020 7946 0958", "415-555-0199", "+49 30 901820"]
CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"]
IBANS = ["DE89 3704 0044 0532 0130 00"]
ADDRESSES = ["742 Evergreen Terrace", "221B Baker Street", "12 calle Mayor", "Hauptstraße 5", "PO Box 4471",
             "1600 Amphitheatre Pkwy"]
SECRETS = ["cvv 737"]

CONVERSATIONS = [
    ["where is my order SD-20001? my email is ada@example.com",
     "also my phone is +1 (415) 555-0142 if the courier needs it",
     "please ship the next one to 742 Evergreen Terrace, Springfield, OR 97403"],
    ["I was charged twice on my card 4111 1111 1111 1111, cvv 737",
     "I want to talk to a human, email me at zoe.quinn@mailbox.example.org or call 020 7946 0958",
     "yes"],
    ["can you deliver to 221B Baker Street, Apt 4 on Sunday?",
     "refund it to my IBAN DE89 3704 0044 0532 0130 00 or the card 5500-0000-0000-0004 please"],
    ["hola, mi correo es ana.lopez@example.es y vivo en 12 calle Mayor, Madrid",
     "oder schicken Sie es an Hauptstraße 5, 10115 Berlin, Tel. +49 30 901820"],
    ["my amex is 378282246310005 and my PO Box 4471 address, and 1600 Amphitheatre Pkwy, Mountain View, CA 94043"],
]
FEEDBACK_COMMENT = "call me on 415-555-0199 or write to ben.o@example.net"


# ---- the scanner ---------------------------------------------------------------------------------------
def _spaced(value: str) -> str:
    """A planted number as it may be written: the same characters with any separators between them."""
    chars = [c for c in value if c.isalnum()]
    return r"(?<![0-9A-Za-z])" + r"[\s().+-]*".join(map(re.escape, chars)) + r"(?![0-9])"


PLANTED = ([(v, re.compile(re.escape(v), re.I)) for v in EMAILS]
           + [(v, re.compile(_spaced(v))) for v in PHONES + CARDS + IBANS]
           + [(v, re.compile(r"\s+".join(map(re.escape, v.split())), re.I)) for v in ADDRESSES + SECRETS])
ANY_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
CARD_LIKE = re.compile(r"(?<![\d.])(?:\d[ -]?){12,18}\d(?!\d|\.\d)")  # not the digits of a float (0.0700...03)


def _luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def find_pii(where: str, content: str) -> list[str]:
    """Every planted value found in ``content``, plus unmasked-looking emails and card numbers."""
    found = [f"{where}: {value!r}" for value, pattern in PLANTED if pattern.search(content)]
    found += [f"{where}: email {m!r}" for m in ANY_EMAIL.findall(content)]
    for m in CARD_LIKE.findall(content):
        digits = re.sub(r"\D", "", m)
        if 13 <= len(digits) <= 19 and _luhn(digits):
            found.append(f"{where}: card number {m!r}")
    return found


RAW = "\n".join(line for conversation in CONVERSATIONS for line in conversation) + "\n" + FEEDBACK_COMMENT


def test_the_scanner_finds_every_planted_value_in_the_raw_text_and_none_once_masked():
    found = find_pii("raw", RAW)
    for value, _pattern in PLANTED:
        assert any(repr(value) in f for f in found), f"the scanner misses {value!r}"
    assert any("email 'ada@example.com'" in f for f in found) and any("card number" in f for f in found)
    assert find_pii("masked", mask(RAW)) == []


@pytest.mark.parametrize(("raw", "masked"), [
    ("mail ada.park@example.com", "mail a***@example.com"),
    ("card 4242 4242 4242 4242 exp 12/27 cvv 123", "card ****4242 exp 12/27 cvv ***"),
    ("amex 3782-822463-10005", "amex ****0005"),
    ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN GB** **** please"),
    ("call +1 (415) 555-0100", "call ***00"),
    ("I live at 742 Evergreen Terrace, Springfield, OR 97403.", "I live at [address]."),
    ("ship to 221B Baker Street, Apt 4", "ship to [address]"),
    ("deliver to 9 Elm Court.", "deliver to [address]."),
    ("Hauptstraße 5, 10115 Berlin", "[address]"),
    ("12 rue de Rivoli", "[address]"),
    ("PO Box 1234", "[address]"),
])
def test_the_masker_masks(raw, masked):
    assert mask(raw) == masked


@pytest.mark.parametrize("kept", [
    "where is my order SD-10492?", "It contains 1 x Trail runner (size 42).", "I bought 2 Court shoes",
    "It was placed on 2026-03-01 and costs $89.00, 3 items", "tracking 1Z999AA10123456784",
    "tracking 9400111899223344556677", "I walked 5 miles down the road", "I ordered 2 shirts by the way",
    "my zip is 94110",
])
def test_the_masker_keeps_what_staff_need_to_read(kept):
    assert mask(kept) == kept


def test_the_cli_logging_masks_messages_and_tracebacks():
    code = ("import logging; from app import logs; logs.configure()\n"
            "log = logging.getLogger('x'); log.warning('shopper wrote %s', 'ada@example.com')\n"
            "try:\n    raise ValueError('bad input: card 4111 1111 1111 1111')\n"
            "except ValueError:\n    log.exception('failed for +1 (415) 555-0142')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stderr
    assert "a***@example.com" in out and "ValueError" in out and "****1111" in out
    assert find_pii("stderr", out) == []


# ---- the pipeline ------------------------------------------------------------------------------------
class LeakyGenerator:
    """Fails with its whole prompt in the error, as some libraries do: the log must still be masked."""

    name, uses_model = "leaky", True

    def warm_up(self) -> None:
        pass

    def stream(self, messages, max_new_tokens, should_stop):
        raise ModelError(f"input rejected: {messages!r}")
        yield


@pytest.fixture()
def log_file(tmp_path):
    """Everything logged at DEBUG, to a file, through a handler set up as app.logs sets up the CLI's."""
    path = tmp_path / "shopdesk.log"
    handler = mask_handler(logging.FileHandler(path, encoding="utf-8"))
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield path
    root.removeHandler(handler)
    root.setLevel(level)
    handler.close()


def dump_tables(engine) -> str:
    """Every row of the assistant's own tables (the shop's customer table holds emails by design)."""
    out = []
    with engine.connect() as conn:
        for table in ("sessions", "turns", "handoff_tickets", "feedback", "audit_log"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                out.append(f"{table}: {json.dumps([str(v) for v in row], ensure_ascii=False)}")
    return "\n".join(out)


def test_no_unmasked_pii_in_logs_stored_turns_staff_views_or_the_eval_report(make_assistant, fake_models, settings,
                                                                            log_file, tmp_path):
    models = Models(fake_models.embedder, fake_models.classifier, LeakyGenerator(), fake_models.index)
    assistant = make_assistant(models=models, retrieval_min_score=0.1)
    s = settings.replace(staff_token=STAFF_TOKEN, rate_limit_per_minute=0)
    client = TestClient(create_app(s, Mode(fake_models=True), warm=False, assistant=assistant),
                        raise_server_exceptions=False)
    staff = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    sessions = []
    for conversation in CONVERSATIONS:
        headers, body = {}, {}
        for line in conversation:
            r = client.post("/api/v1/chat", json={**body, "message": line}, headers=headers)
            assert r.status_code == 200, r.text
            if r.json()["session_token"]:
                headers = {"X-Session-Token": r.json()["session_token"]}
                body = {"session_id": r.json()["session_id"]}
        sessions.append((body["session_id"], headers))
    r = client.post("/api/v1/feedback", json={"session_id": sessions[0][0], "rating": "down",
                                              "comment": FEEDBACK_COMMENT}, headers=sessions[0][1])
    assert r.status_code == 200

    # the staff demo's panel for a turn, as app/ui.py renders it
    demo = [assistant.respond(Message("demo-1", line, channel="demo")) for line in CONVERSATIONS[1]]
    panel = [json.dumps(debug_view(x)) + summary_markdown(x) + json.dumps(passage_rows(x)) for x in demo]

    # an eval run over the same conversations (its report is passed around more widely than the database)
    suite = tmp_path / "pii.yaml"
    suite.write_text(yaml.safe_dump([{"id": f"pii-{i}", "turns": [{"user": line} for line in c]}
                                     for i, c in enumerate(CONVERSATIONS)], allow_unicode=True), encoding="utf-8")
    console = io.StringIO()
    summary = run_paths([suite], settings.replace(retrieval_min_score=0.1), Mode(fake_models=True), out=console,
                        models=fake_models)
    report = write_report(summary, tmp_path / "report")
    assert summary["total"] == len(CONVERSATIONS) and summary["turns"]["total"] == sum(map(len, CONVERSATIONS))

    logging.getLogger(__name__).debug("end of the run")  # the file handler saw DEBUG lines
    logged = log_file.read_text(encoding="utf-8")
    assert "end of the run" in logged and "generator failed" in logged and "input rejected" in logged
    stored = dump_tables(assistant.c.sessions.engine)
    assert stored.count("turns:") == sum(map(len, CONVERSATIONS)) + len(demo)
    assert "a***@example.com" in stored and "[address]" in stored and "****1111" in stored  # masked, not dropped
    views = {
        "log file": logged,
        "database": stored,
        "staff stats": client.get("/api/v1/staff/stats?days=30", headers=staff).text,
        "staff handoffs": client.get("/api/v1/staff/handoffs", headers=staff).text,
        "staff transcripts": "\n".join(client.get(f"/api/v1/staff/sessions/{sid}", headers=staff).text
                                       for sid, _h in sessions),
        "shopper transcripts": "\n".join(client.get(f"/api/v1/sessions/{sid}", headers=h).text for sid, h in sessions),
        "debug panel": "\n".join(panel),
        "eval report.json": report["json"].read_text(encoding="utf-8"),
        "eval report.html": report["html"].read_text(encoding="utf-8"),
        "eval console": console.getvalue(),
    }
    assert "ticket" in views["staff handoffs"].lower() or '"tickets"' in views["staff handoffs"]
    leaks = [hit for where, content in views.items() for hit in find_pii(where, content)]
    assert leaks == []
