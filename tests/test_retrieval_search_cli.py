"""`shopdesk search [FILE|-]`: JSONL questions in, JSONL ranked articles out, in batches."""

from __future__ import annotations

import io
import json

import pytest

from app.cli import main
from app.errors import InputError
from app.factory import Mode, build_index, embedder, faq_index, faq_retriever
from app.jsonl import read_text_lines
from knowledge_base.batch_search import doc_results, search_records

QUESTIONS = ["how much does shipping cost", "do gift cards expire", "can i pay with paypal",
             "how do i reset my password", "do you ship to canada"]


@pytest.fixture()
def indexed(settings):
    build_index(settings, embedder(settings, Mode(fake_models=True)))
    return settings


def test_search_from_a_file_writes_one_ranked_line_per_question(indexed, tmp_path, capsys):
    src = tmp_path / "q.jsonl"
    src.write_text("".join(json.dumps({"text": q, "id": i}) + "\n" for i, q in enumerate(QUESTIONS)) + "\n")
    assert main(["--data-dir", str(indexed.data_dir), "search", str(src), "--fake-models", "-k", "3",
                 "--batch", "2"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["id"] for x in lines] == list(range(5)) and [x["text"] for x in lines] == QUESTIONS
    for x in lines:
        docs = [r["doc_id"] for r in x["results"]]
        assert 1 <= len(docs) <= 3 and len(set(docs)) == len(docs)
        assert set(x["results"][0]) == {"doc_id", "title", "url", "section", "score", "similarity"}
        assert [r["score"] for r in x["results"]] == sorted((r["score"] for r in x["results"]), reverse=True)
        assert isinstance(x["answerable"], bool)
    assert "gift cards" in lines[1]["results"][0]["title"].lower()


def test_search_reads_stdin(indexed, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "do gift cards expire"}\n'))
    assert main(["--data-dir", str(indexed.data_dir), "search", "--fake-models"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["text"] == "do gift cards expire" and "gift cards" in out["results"][0]["title"].lower()


def test_bad_lines_are_reported_and_nothing_is_searched(indexed, tmp_path, capsys):
    src = tmp_path / "q.jsonl"
    src.write_text('{"text": "fine"}\n{"question": "wrong key"}\nnot json\n["text"]\n')
    assert main(["--data-dir", str(indexed.data_dir), "search", str(src), "--fake-models"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "3 bad line(s)" in captured.err and "line 2:" in captured.err and "line 3: not JSON" in captured.err
    assert main(["--data-dir", str(indexed.data_dir), "search", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_search_without_an_index_says_which_command_builds_it(settings, tmp_path, capsys):
    src = tmp_path / "q.jsonl"
    src.write_text('{"text": "hi"}\n')
    assert main(["--data-dir", str(settings.data_dir), "search", str(src), "--fake-models"]) == 2
    assert "shopdesk index" in capsys.readouterr().err


def test_batches_give_the_same_results_as_single_questions(indexed):
    emb = embedder(indexed, Mode(fake_models=True))
    retriever = faq_retriever(indexed, emb, faq_index(indexed, emb))
    records = read_text_lines([json.dumps({"text": q}) for q in QUESTIONS], "q", "searched", "x")
    batched = list(search_records(records, retriever, 3, 0.1, 3, batch=2))
    single = [next(search_records([r], retriever, 3, 0.1, 3, batch=1)) for r in records]
    assert batched == single
    with pytest.raises(InputError, match="line 1"):
        read_text_lines(['{"text": 3}'], "q", "searched", "x")


def test_doc_results_keep_the_first_chunk_of_each_article():
    from knowledge_base.index import Hit

    hits = [Hit("a:1", "a", "A", "u", "s1", "t", 0.5, 0.3), Hit("a:2", "a", "A", "u", "s2", "t", 0.6, 0.2),
            Hit("b:1", "b", "B", "", "", "t", 0.4, 0.1)]
    assert [(r["doc_id"], r["section"]) for r in doc_results(hits, 5)] == [("a", "s1"), ("b", "")]
    assert len(doc_results(hits, 1)) == 1
