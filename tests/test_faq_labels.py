"""Staff labels of FAQ questions: the file they are kept in, and the precedents taking them in as they come
(knowledge_base/labels.py, knowledge_base/precedents.py). The API that writes them: tests/test_api_staff.py;
their effect with the real models: tests/test_retrieval_integration.py."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from knowledge_base.embedder import HashingEmbedder
from knowledge_base.errors import KnowledgeBaseError
from knowledge_base.labelled import LabelledQuestion
from knowledge_base.labels import MAX_TEXT, FaqLabel, LabelStore
from knowledge_base.precedents import Precedents

BUNDLED = [LabelledQuestion("do you ship to canada", ("shipping",)), LabelledQuestion("who founded the shop", ()),
           LabelledQuestion("can i return earbuds", ("returns",))]
KNOWN = frozenset({("shipping", "Zones"), ("returns", "Window")})


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return super().embed(texts)


def hit(doc_id: str, section: str) -> SimpleNamespace:
    return SimpleNamespace(doc_id=doc_id, section=section)


def test_labels_are_appended_and_read_from_where_the_reader_stopped(tmp_path):
    store = LabelStore(tmp_path / "labels" / "faq.jsonl")
    assert store.all() == [] and store.read_from(0) == ([], 0)
    first = FaqLabel("how long do you keep my chat history", False, (("privacy", "Your data"),), "2026-12-07T10:00:00")
    store.add(first)
    labels, offset = store.read_from(0)
    assert labels == [first] and offset == store.size()
    store.add(FaqLabel("do you ship to norway", True))
    assert store.read_from(offset)[0] == [FaqLabel("do you ship to norway", True)]
    assert store.all() == [first, FaqLabel("do you ship to norway", True)]


def test_a_line_still_being_written_waits_and_a_malformed_one_is_skipped(tmp_path, caplog):
    store = LabelStore(tmp_path / "faq.jsonl")
    store.path.write_text('{"text": "a", "answerable": false}\n{"text": "b", "answerable": "yes"}\nnot json\n'
                          '{"text": "c", "answ')
    with caplog.at_level(logging.WARNING):
        labels, offset = store.read_from(0)
    assert labels == [FaqLabel("a", False)] and len([r for r in caplog.records if "malformed" in r.message]) == 2
    with open(store.path, "a") as f:
        f.write('erable": true}\n')
    assert store.read_from(offset) == ([FaqLabel("c", True)], store.size())


def test_a_label_needs_words_and_a_verdict():
    with pytest.raises(KnowledgeBaseError, match="text"):
        FaqLabel("   ", False)
    with pytest.raises(KnowledgeBaseError, match="at most"):
        FaqLabel("x" * (MAX_TEXT + 1), False)
    with pytest.raises(KnowledgeBaseError, match="true or false"):
        FaqLabel.from_dict({"text": "a", "answerable": "no"})


def test_a_staff_label_joins_the_precedents_at_the_next_question_and_counts_for_its_own_words(tmp_path):
    emb, store = HashingEmbedder(), LabelStore(tmp_path / "faq.jsonl")
    memory = Precedents(BUNDLED, KNOWN, store)
    question = "how long do you keep my chat history"
    before = memory.score(emb, question, hits=[hit("shipping", "Zones")])
    store.add(FaqLabel(question, False, (("privacy", "Your data"),)))
    after = memory.score(emb, question, hits=[hit("shipping", "Zones")])
    v = emb.embed(["do you ship to canada", "can i return earbuds", question])
    # unlike a bundled question, a staff label is a precedent for its own words: cosine 1 with the question
    assert after == pytest.approx(float(max(v[0] @ v[2], v[1] @ v[2])) - 1.0, abs=1e-6)
    assert after < before and len(memory) == 4
    # its passages' section is now known: the precedents speak for a question that hits it
    assert memory.score(emb, question, hits=[hit("privacy", "Your data")]) == pytest.approx(after)
    assert memory.score(emb, question, hits=[hit("privacy", "Elsewhere")]) is None
    # another process reading the same file: the same
    assert Precedents(BUNDLED, KNOWN, store).score(emb, question) == pytest.approx(after)


def test_a_later_label_of_the_same_words_overrides_an_earlier_one_and_a_bundled_question(tmp_path):
    emb, store = HashingEmbedder(), LabelStore(tmp_path / "faq.jsonl")
    memory = Precedents(BUNDLED, None, store)
    store.add(FaqLabel("How long do you keep my chat history?", False))
    assert memory.score(emb, "how long do you keep my chat history") < 0
    store.add(FaqLabel("how long do you keep my  chat history", True))
    assert memory.score(emb, "how long do you keep my chat history") > 0 and len(memory) == 4
    store.add(FaqLabel("Who founded the shop", True))  # the help centre now says so: the bundled label goes
    assert memory.score(emb, "who founded the shop?") is None  # no unanswerable precedent is left
    assert len(memory) == 4


def test_labels_are_embedded_once_as_they_come(tmp_path):
    emb, store = CountingEmbedder(), LabelStore(tmp_path / "faq.jsonl")
    memory = Precedents(BUNDLED, None, store)
    memory.score(emb, "q1")
    store.add(FaqLabel("label one", False))
    store.add(FaqLabel("label two", True))
    memory.score(emb, "q2")
    memory.score(emb, "q3")
    assert emb.calls == [[q.text for q in BUNDLED], ["q1"], ["label one", "label two"], ["q2"], ["q3"]]


def test_a_replaced_labels_file_is_read_again_from_the_start(tmp_path):
    emb, store = HashingEmbedder(), LabelStore(tmp_path / "faq.jsonl")
    memory = Precedents(BUNDLED, None, store)
    store.add(FaqLabel("a long question about chat history retention", False))
    assert len(memory.warm(emb)) == 4
    store.path.write_text('{"text": "x", "answerable": true}\n')  # shorter than what was read
    assert memory.refresh() == 1 and len(memory) == 4 and len(memory.warm(emb)) == 4
    assert memory.texts[-1] == "x"
