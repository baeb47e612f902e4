"""The answerability rule (knowledge_base/answerable.py): floor, accept score, and in between lexical
coverage or one matching sentence. Fakes only: hand-made hits and the hashing embedder."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from app.config import load_settings
from app.errors import ConfigError
from knowledge_base.answerable import AnswerRule, SentenceSimilarity, content_terms, coverage, split_sentences
from knowledge_base.embedder import HashingEmbedder

RETURNS = "Most items can be returned within 30 days. Electronics, including earbuds, within 15 days."


def hit(similarity: float, text: str = RETURNS, title: str = "Return policy", section: str = "Return windows"):
    return SimpleNamespace(title=title, section=section, text=text, similarity=similarity)


class CountingEmbedder(HashingEmbedder):
    """The hashing fake, remembering every batch of texts it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def embed(self, texts, show_progress=False):
        self.calls.append(list(texts))
        return super().embed(texts)


class FixedSentences:
    """A stand-in for ``SentenceSimilarity`` that returns one score and counts the calls."""

    def __init__(self, score: float) -> None:
        self.score, self.calls = score, 0

    def best(self, question, passages, question_vector=None):
        self.calls += 1
        return self.score


def test_content_terms_drop_stopwords_question_filler_and_shorthand_and_stem():
    assert content_terms("What's the cost of shipping to Canada?") == {"cost", "ship", "canada"}
    assert content_terms("whats ur returns policy") == {"return", "policy"}
    assert content_terms("how do i get something") == frozenset()


def test_coverage_is_the_share_of_question_words_found_in_any_passage():
    passages = [hit(0.5, "Standard shipping takes 3-5 business days.", "Shipping times", ""),
                hit(0.4, "We ship to Canada.", "International shipping", "")]
    assert coverage("how long does shipping to canada take", passages) == pytest.approx(3 / 4)  # not "long"
    assert coverage("do you sell kayaks", passages) == 0.0  # sell, kayak: neither
    assert coverage("how do i", passages) == 0.0  # no content words: no evidence
    assert coverage("return windows", [hit(0.5, "nothing here")]) == 1.0  # the section heading counts


def test_the_cosine_alone_decides_outside_the_band():
    rule = AnswerRule(min_score=0.4, accept_score=0.57, min_coverage=0.65, min_sentence_score=0.48)
    sentences = FixedSentences(0.99)
    low = rule.decide("how long do i have to return earbuds", [hit(0.39), hit(0.2)], sentences)
    assert (low.answerable, low.reason, low.coverage) == (False, "below_floor", None)
    high = rule.decide("do you sell kayaks", [hit(0.2), hit(0.6)], sentences)  # the best of the hits counts
    assert (high.answerable, high.reason, high.similarity) == (True, "similar", 0.6)
    assert sentences.calls == 0 and not rule.decide("anything", [], sentences).answerable


def test_in_the_band_covered_words_answer_without_asking_for_sentences():
    rule = AnswerRule(0.4, 0.57, 0.65, 0.48)
    sentences = FixedSentences(0.0)
    d = rule.decide("can i return earbuds", [hit(0.45)], sentences)  # return, earbud: both in the passage
    assert (d.answerable, d.reason, d.coverage, d.sentence) == (True, "covered", 1.0, None)
    assert sentences.calls == 0


def test_in_the_band_an_uncovered_question_needs_one_matching_sentence():
    rule = AnswerRule(0.4, 0.57, 0.65, 0.48)
    near_miss = "how do i clean a wool sweater"
    declined = rule.decide(near_miss, [hit(0.5)], FixedSentences(0.47))
    assert (declined.answerable, declined.reason, declined.sentence) == (False, "unsupported", 0.47)
    answered = rule.decide(near_miss, [hit(0.5)], FixedSentences(0.48))
    assert (answered.answerable, answered.reason) == (True, "sentence")
    # no sentence scorer (e.g. BM25 only) or the check switched off (> 1): the lexical check alone
    assert rule.decide(near_miss, [hit(0.5)]).reason == "unsupported"
    off = AnswerRule(0.4, 0.57, 0.65, 2.0)
    assert not off.decide(near_miss, [hit(0.5)], FixedSentences(1.0)).answerable


def test_the_floor_rule_is_the_old_relevance_floor():
    rule = AnswerRule.floor(0.45)
    for similarity in (0.2, 0.449, 0.45, 0.8):
        d = rule.decide("do you sell kayaks", [hit(similarity)])
        assert d.answerable == (similarity >= 0.45) and d.coverage is None


def test_from_settings_reads_the_four_named_settings():
    s = load_settings(retrieval_min_score=0.3, retrieval_accept_score=0.6, retrieval_min_coverage=0.5,
                      retrieval_min_sentence_score=0.55)
    assert AnswerRule.from_settings(s) == AnswerRule(0.3, 0.6, 0.5, 0.55)


@pytest.mark.parametrize("name", ["retrieval_accept_score", "retrieval_min_coverage", "retrieval_min_sentence_score"])
def test_the_new_settings_must_be_between_0_and_1(name):
    with pytest.raises(ConfigError, match=name):
        load_settings(**{name: 1.5})


def test_split_sentences_counts_list_items_as_sentences():
    assert split_sentences("Hours:\n- Monday: 8-20.\n- Sunday: closed.\nCall us.") == [
        "Hours: Monday: 8-20.", "Sunday: closed.", "Call us."]


def test_sentence_similarity_is_the_best_single_sentence_with_its_heading():
    emb = HashingEmbedder()
    scorer = SentenceSimilarity(emb)
    question = "earbuds within 15 days"
    expected = [f"Return policy Return windows: {s}" for s in split_sentences(RETURNS)]
    vectors = emb.embed([question, *expected])
    assert scorer.best(question, [hit(0.5)]) == pytest.approx(float((vectors[1:] @ vectors[0]).max()), abs=1e-6)
    assert scorer.best(question, []) == 0.0


def test_sentence_vectors_are_embedded_once_per_passage_in_one_call_with_the_question():
    emb = CountingEmbedder()
    scorer = SentenceSimilarity(emb)
    other = hit(0.4, "Gift cards never expire.", "Gift cards", "")
    scorer.best("q1", [hit(0.5), other])
    assert len(emb.calls) == 1 and emb.calls[0][0] == "q1" and len(emb.calls[0]) == 1 + 2 + 1
    first = scorer.best("q2", [hit(0.5), other])
    assert emb.calls[1] == ["q2"]  # passages already seen: only the question
    assert first == scorer.best("q2", [other, hit(0.5)])  # order does not matter
    assert SentenceSimilarity.shared(emb) is SentenceSimilarity.shared(emb)
    assert SentenceSimilarity.shared(emb) is not SentenceSimilarity.shared(HashingEmbedder())


def test_a_question_vector_from_the_retriever_is_used_instead_of_embedding_the_question():
    emb = CountingEmbedder()
    scorer = SentenceSimilarity(emb)
    question = "earbuds within 15 days"
    fresh = scorer.best(question, [hit(0.5)])
    assert scorer.best(question, [hit(0.5)], emb.embed([question])[0]) == pytest.approx(fresh, abs=1e-6)
    assert emb.calls[-1] == [question]  # only the test's own call: the scorer embedded nothing
    rule = AnswerRule(0.4, 0.57, 0.65, 0.1)
    d = rule.decide("how do i clean a wool sweater", [hit(0.5)], scorer, emb.embed([question])[0])
    assert d.sentence == pytest.approx(fresh, abs=1e-6)  # the given vector, not the text, was compared


def test_the_sentence_cache_is_bounded():
    scorer = SentenceSimilarity(HashingEmbedder(), max_passages=2)
    for n in range(5):
        scorer.best("q", [hit(0.5, f"Passage number {n}.")])
        assert len(scorer._vectors) <= 2
    assert isinstance(scorer.best("q", [hit(0.5)]), float) and np.isfinite(scorer.best("q", [hit(0.5)]))
