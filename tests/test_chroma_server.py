"""Chroma server mode against a real `chroma run` on a free loopback port, started by this module.

The same ChromaIndex code talks HTTP instead of opening a folder: sync by content hash, queries,
the BM25 snapshot and a whole FAQ turn must work the same. Telemetry is off on both sides.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.factory import Models, build_index, faq_index
from app.generator import TemplateGenerator
from app.schema import Message
from intents.classifier import KeywordClassifier
from knowledge_base.embedder import HashingEmbedder
from knowledge_base.index import ChromaIndex
from knowledge_base.loader import load_chunks
from knowledge_base.retriever import HybridRetriever
from tests.test_index import write

CHROMA = Path(sys.executable).parent / "chroma"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):
    assert CHROMA.exists(), f"{CHROMA} is missing: the chromadb package provides it (run `make setup`)"
    base = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    log = (base / "server.log").open("w")
    proc = subprocess.Popen([str(CHROMA), "run", "--path", str(base / "data"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}:\n{(base / 'server.log').read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run did not answer on port {port} within 60 s")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_sync_over_http_touches_exactly_what_changed(chroma_server, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, "ship", "Shipping")
    write(docs, "pay", "Payment")
    emb = HashingEmbedder()
    index = ChromaIndex("server_sync", host="127.0.0.1", port=chroma_server)
    first = index.sync(load_chunks(docs), emb)
    assert (first.added, first.deleted, first.unchanged) == (4, 0, 0)
    again = index.sync(load_chunks(docs), emb)
    assert (again.added, again.deleted, again.unchanged) == (0, 0, 4)
    write(docs, "ship", "Shipping", times="Standard takes 2-4 business days.")
    (docs / "pay.md").unlink()
    third = index.sync(load_chunks(docs), emb)
    assert (third.added, third.deleted, third.unchanged) == (1, 3, 1)
    other_client = ChromaIndex("server_sync", host="127.0.0.1", port=chroma_server)
    assert other_client.ids() == index.ids() and other_client.count() == 2
    hit = other_client.query(emb.embed(["Standard takes 2-4 business days"])[0], 1)[0]
    assert (hit.doc_id, hit.section) == ("ship", "Times")


def test_hybrid_retrieval_reads_its_bm25_corpus_from_the_server(chroma_server, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, "ship", "Shipping")
    write(docs, "tty", "Relay calls", times="We take calls through TTY relay services.")
    index = ChromaIndex("server_hybrid", host="127.0.0.1", port=chroma_server)
    index.sync(load_chunks(docs), HashingEmbedder())
    retriever = HybridRetriever(index, HashingEmbedder(), rrf_k=5, candidates=5)
    hits = retriever.search("tty", 2)
    assert hits[0].doc_id == "tty" and hits[0].lexical > 0
    assert len(index.snapshot().chunks) == 4


def test_a_faq_turn_is_answered_from_a_chroma_server(chroma_server, make_assistant, settings):
    server = settings.replace(chroma_host="127.0.0.1", chroma_port=chroma_server, retrieval_min_score=0.1)
    emb = HashingEmbedder()
    stats = build_index(server, emb)
    assert stats.added > 40 and faq_index(server, emb).host == "127.0.0.1"
    models = Models(emb, KeywordClassifier(), TemplateGenerator(), faq_index(server, emb))
    reply = make_assistant(models=models, retrieval_min_score=0.1, chroma_host="127.0.0.1",
                           chroma_port=chroma_server).respond(Message("srv", "how long does shipping take"))
    assert reply.route == "faq" and reply.sources and "Source:" in reply.text
