"""Fault (issue 10): the server process killed between the shopper's "yes" and the commit of the return.

A real `shopdesk serve` process takes a return to its summary; on the "yes" it dies inside the write
(``SHOPDESK_FAULT_EXIT``, the test-only hook in app/writes.py: ``os._exit`` with the rows flushed but
not committed, or just after the commit, before the turn is saved). After a restart without the hook:
no half-written return (no return, item or audit row), and the same session's retried "yes" creates
exactly one return; killed after the commit, the retried "yes" finds the return the first one wrote.
Runs on SQLite, and on PostgreSQL when SHOPDESK_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api_chat import SESSION_HEADER
from app.clock import SystemClock
from app.config import Settings
from app.db import AuditRow, Return, ReturnItem, SessionRow, TurnRow, make_engine, migrate
from app.loadtest import server_env
from app.loadtest_shop import Shopper, load_shop, return_reply, says
from app.server_process import ServerProcess
from app.writes import FAULT_EXIT_ENV


class Chat:
    """One shopper's session over HTTP; it survives a server restart (same session id and token)."""

    def __init__(self) -> None:
        self.session_id, self.token = "", ""

    def say(self, url: str, text: str) -> dict:
        body, headers = {"message": text}, {}
        if self.session_id:
            body["session_id"], headers[SESSION_HEADER] = self.session_id, self.token
        resp = httpx.post(f"{url}/api/v1/chat", json=body, headers=headers, timeout=30, trust_env=False)
        assert resp.status_code == 200, resp.text
        data = resp.json()
        if not self.session_id:
            self.session_id, self.token = data["session_id"], data["session_token"]
        return data


def to_summary(chat: Chat, url: str, shopper: Shopper) -> dict:
    reply = chat.say(url, says("return", shopper, 0))
    for _ in range(5):
        if reply["facts_kind"] == "return_summary":
            return reply
        answer = return_reply(reply["facts_kind"], shopper)
        assert answer is not None, reply
        reply = chat.say(url, answer)
    raise AssertionError(f"the return flow did not reach its summary: {reply['facts_kind']}")


def counts(engine, shopper: Shopper, session_id: str) -> dict[str, int]:
    with Session(engine) as s:
        rmas = s.scalars(select(Return.id).where(Return.order_id == shopper.return_order)).all()
        return {"returns": len(rmas),
                "items": s.scalar(select(func.count()).select_from(ReturnItem).where(ReturnItem.return_id.in_(rmas))),
                "audit": s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.session_id == session_id)),
                "turns": s.scalar(select(func.count()).select_from(TurnRow).where(TurnRow.session_id == session_id))}


def flow_step(engine, session_id: str) -> str | None:
    with Session(engine) as s:
        flow = s.get(SessionRow, session_id).state.get("flow")
    return dict(map(tuple, flow["slots"])).get("step") if flow else None


@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_server_killed_between_yes_and_commit(point: str, empty_db_url: str, tmp_path: Path,
                                              settings: Settings) -> None:
    engine = make_engine(empty_db_url)
    migrate(engine)
    try:
        [shopper] = load_shop(engine, 1, settings.order_prefix, SystemClock().now())
        env = server_env(settings, tmp_path / "work", empty_db_url)
        chat = Chat()

        with ServerProcess({**env, FAULT_EXIT_ENV: point}, tmp_path / "first.log") as server:
            summary = to_summary(chat, server.url, shopper)
            assert shopper.return_order in summary["text"]
            with pytest.raises(httpx.TransportError):  # the "yes": the process dies before it answers
                chat.say(server.url, "yes")
            assert server.wait_exit() == 1, server.log_tail()

        before = counts(engine, shopper, chat.session_id)
        assert before["turns"] == 3  # request, reason, condition: the "yes" turn died with the process
        assert flow_step(engine, chat.session_id) == "confirm"  # the session still waits for the yes
        if point == "before_commit":  # nothing half-written: no return, no item, no audit row
            assert before == {"returns": 0, "items": 0, "audit": 0, "turns": 3}
        else:  # the return committed whole (with its item and audit row); only the reply was lost
            assert before == {"returns": 1, "items": 1, "audit": 1, "turns": 3}

        with ServerProcess(env, tmp_path / "second.log") as server:  # restarted, without the hook
            retried = chat.say(server.url, "yes")
            assert retried["facts_kind"] == "return_created"
            [action] = [a["create_return"] for a in retried["actions"] if "create_return" in a]
            again = chat.say(server.url, "yes")  # and a late double click after it
            assert not [a for a in again["actions"] if "create_return" in a]

        with Session(engine) as s:
            rows = s.execute(select(Return.id, Return.session_id).where(Return.order_id == shopper.return_order)).all()
        assert [tuple(r) for r in rows] == [(action["rma"], chat.session_id)]  # exactly one, the one announced
        assert counts(engine, shopper, chat.session_id) == {"returns": 1, "items": 1, "audit": 1, "turns": 5}
    finally:
        engine.dispose()
