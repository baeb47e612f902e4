"""`shopdesk classify`: JSONL in, JSONL out in the same order, batched; clear errors for bad input."""

import io
import json

import pytest

from app.cli import main
from app.errors import InputError
from app.jsonl import read_text_lines
from intents.batch import classify_records
from intents.classifier import KeywordClassifier
from intents.entities import EntityExtractor

LINES = [{"text": "where is my order SD-10492?"}, {"text": "hi"}, {"text": "cancel order #10493 pls"},
         {"text": "what's the weather"}, {"text": "refund to ada@example.com, zip 94110"}]


class CountingClassifier(KeywordClassifier):
    """The keyword fake, recording how many messages each classifier call got."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def classify_batch(self, texts):
        self.calls.append(len(texts))
        return super().classify_batch(texts)


def test_classify_records_in_order_batched_with_entities():
    clf = CountingClassifier()
    texts = [line["text"] for line in LINES]
    out = list(classify_records(texts, clf, EntityExtractor("SD-"), batch=2))
    assert clf.calls == [2, 2, 1]
    assert [o["text"] for o in out] == texts
    assert [o["route"] for o in out[:4]] == ["order_status", "smalltalk", "cancel_order", "out_of_scope"]
    assert all(set(o) == {"text", "intent", "route", "confidence", "entities"} for o in out)
    assert out[0]["entities"]["order_ids"] == ["SD-10492"] and out[2]["entities"]["order_ids"] == ["SD-10493"]
    assert out[4]["entities"]["emails"] == ["ada@example.com"] and out[4]["entities"]["zips"] == ["94110"]
    assert all(0 < o["confidence"] <= 1 for o in out)


def test_reading_lists_every_bad_line_and_reads_nothing():
    lines = ['{"text": "ok"}', "", "not json", '{"message": "hi"}', '{"text": "  "}', '["hi"]']
    with pytest.raises(InputError) as err:
        read_text_lines(lines, "in.jsonl", "classified", "where is my order?")
    msg = str(err.value)
    assert "in.jsonl: 4 bad line(s), nothing was classified" in msg
    assert all(f"line {n}:" in msg for n in (3, 4, 5, 6)) and "line 1:" not in msg
    assert '{"text": "where is my order?"}' in msg  # says what a good line looks like
    assert [r["text"] for r in read_text_lines(['{"text": "a", "id": 1}', "  ", '{"text": "b"}'], "in", "x", "y")
            ] == ["a", "b"]


def test_cli_classify_file_and_stdin(tmp_path, capsys, monkeypatch):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in LINES) + "\n", encoding="utf-8")
    assert main(["--data-dir", str(tmp_path / "d"), "classify", str(path), "--fake-models", "--batch", "2"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["text"] for o in out] == [line["text"] for line in LINES]
    assert out[0]["route"] == "order_status" and out[0]["entities"]["order_ids"] == ["SD-10492"]

    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "thanks"}\n'))
    assert main(["--data-dir", str(tmp_path / "d"), "classify", "-", "--fake-models"]) == 0
    assert json.loads(capsys.readouterr().out)["route"] == "smalltalk"


def test_cli_classify_bad_input_exits_2_with_the_fix(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "hi"}\nhello\n', encoding="utf-8")
    assert main(["--data-dir", str(tmp_path / "d"), "classify", str(path), "--fake-models"]) == 2
    err = capsys.readouterr()
    assert "line 2: not JSON" in err.err and err.out == ""
    assert main(["--data-dir", str(tmp_path / "d"), "classify", str(tmp_path / "missing.jsonl"), "--fake-models"]) == 2
    assert "no such file" in capsys.readouterr().err
