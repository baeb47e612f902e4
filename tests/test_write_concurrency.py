"""Concurrent confirmations (issue 10, found by `shopdesk loadtest` with 2 workers on PostgreSQL): many
shoppers saying "yes" at the same moment must each get their own return, on SQLite and on PostgreSQL.

FlowWriter picks the next RMA number by reading the highest one, so writers that start together pick
the same number; each round only one won, and with more writers at once than ``_ID_ATTEMPTS`` some
ran out of attempts (RuntimeError -> HTTP 500). The writes now take turns inside their transaction
(``app.writes._serialise``).
"""

from __future__ import annotations

import threading
from datetime import datetime

from app.clock import SystemClock
from app.loadtest_shop import load_shop
from app.writes import FlowWriter, ReturnLine, WriteRequest, WriteResult

WRITERS = 32


def test_concurrent_returns_each_get_their_own_rma(db_engine) -> None:
    shoppers = load_shop(db_engine, WRITERS, "SD-", SystemClock().now())
    start = threading.Barrier(WRITERS)
    results: list[WriteResult | BaseException] = []

    def confirm(sh) -> None:
        req = WriteRequest(key=f"key-{sh.customer_id}", session_id=f"s-{sh.customer_id}",
                           customer_id=sh.customer_id, order_id=sh.return_order, clauses=(),
                           lines=(ReturnLine(sh.item_sku, 1),))
        start.wait()
        try:
            results.append(FlowWriter(db_engine).create_return(req, datetime(2026, 3, 1)))
        except Exception as exc:  # collected: the assertion below names it
            results.append(exc)

    threads = [threading.Thread(target=confirm, args=(sh,)) for sh in shoppers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [r for r in results if not isinstance(r, WriteResult) or not r.ok]
    assert not failed, failed
    assert len({r.object_id for r in results if isinstance(r, WriteResult)}) == WRITERS
