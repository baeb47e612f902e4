"""`shopdesk eval record`: a stored conversation becomes a transcript that loads strictly and replays."""

import pytest

from app.cli import main
from app.errors import TranscriptError
from app.factory import Mode
from app.schema import Message
from evals.record import OTHER_EMAIL, placeholder_email, record_session
from evals.runner import run_paths
from evals.transcript import load_file

CONVERSATION = ["hi", "where is my order SD-20001?", "eve@example.com", "ada@example.com",
                "I want to talk to a person", "yes please"]


@pytest.fixture()
def recorded(make_assistant):
    """A conversation with the fakes on the test shop: a failed and a good verification, then a ticket."""
    assistant = make_assistant()
    replies = [assistant.respond(Message("web-42", text, client_id="1.2.3.4")) for text in CONVERSATION]
    assert [r.verified for r in replies] == [False, False, False, True, True, True]
    assert replies[-1].actions and replies[-1].actions[0].name == "open_handoff_ticket"
    return assistant.c.sessions.engine


def test_recording_loads_strictly_keeps_no_personal_data_and_replays(tmp_path, recorded, settings):
    text = record_session(recorded, "web-42")
    path = tmp_path / "recorded.yaml"
    path.write_text(text, encoding="utf-8")

    (t,) = load_file(path)
    assert t.id == "recorded-web-42" and t.seed == "empty" and "recorded" in t.tags
    assert "PII-masked" in t.description and placeholder_email("C900") in t.description
    for secret in ("ada@example.com", "eve@example.com", "Ada Park"):
        assert secret not in text
    users = [turn.user for turn in t.turns]
    assert users[2] == OTHER_EMAIL and users[3] == placeholder_email("C900")
    assert [o["id"] for o in t.fixtures["orders"]] == ["SD-20001"]  # only what the session was verified for
    assert t.fixtures["orders"][0]["tracking_number"] == "1Z999AA10123456784"
    assert t.fixtures["customers"][0]["zip"] == "94110"
    assert [turn.expect["verified"] for turn in t.turns] == [False, False, False, True, True, True]
    assert t.turns[-1].expect["actions"] == [{"open_handoff_ticket": {}}]
    assert t.final_state == {"orders": [{"id": "SD-20001", "status": "in_transit"}], "returns": [],
                             "handoff_tickets": [{"status": "open"}]}
    assert "# assistant said:" in text

    summary = run_paths([path], settings, Mode(fake_models=True))
    assert summary["failed"] == [], summary["results"][0]


def test_record_command_writes_the_file_and_refuses_to_overwrite(tmp_path, recorded, settings, capsys):
    out = tmp_path / "t.yaml"
    argv = ["--data-dir", str(settings.data_dir), "eval", "record", "web-42", "--out", str(out)]
    assert main(argv) == 0 and load_file(out)[0].id == "recorded-web-42"
    assert main(argv) == 2 and "exists" in capsys.readouterr().err


def test_an_unknown_session_names_the_recent_ones(recorded):
    with pytest.raises(TranscriptError, match="no session 'nope' in the database; recent sessions: web-42"):
        record_session(recorded, "nope")
