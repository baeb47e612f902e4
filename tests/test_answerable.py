"""The answerability rule (knowledge_base/answerable.py): the cosine floor, then the learned model over
the best cosine, the best sentence, the missing words and the word alignment. Fakes only: hand-made
hits, a hand-made model and the hashing embedder."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

from app.config import load_settings
from app.errors import ConfigError
from knowledge_base.answer_model import FEATURES, MODEL_FILE, AnswerModel, fit
from knowledge_base.answerable import (
    AnswerRule,
    SentenceSimilarity,
    content_terms,
    missing_weight,
    passage_terms,
    split_sentences,
    term_weight,
)
from knowledge_base.embedder import HashingEmbedder, group_word_pieces
from knowledge_base.errors import KnowledgeBaseError
from knowledge_base.labelled import LabelledQuestion, load_questions
from knowledge_base.loader import DOCS_DIR, load_chunks
from knowledge_base.precedents import Precedents, load_precedents

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

    def embed_words(self, texts):
        self.calls.append(list(texts))
        return super().embed_words(texts)


class FixedSentences:
    """A stand-in for ``SentenceSimilarity`` that returns fixed scores and counts the calls."""

    words = True

    def __init__(self, score: float, alignment: float = 0.5) -> None:
        self.score, self.alignment, self.calls = score, alignment, 0

    def best(self, question, passages, question_vector=None):
        self.calls += 1
        return self.score

    def aligned(self, question, passages, vocab):
        return self.alignment


def test_content_terms_drop_stopwords_question_filler_and_shorthand_and_stem():
    assert content_terms("What's the cost of shipping to Canada?") == {"cost", "ship", "canada"}
    assert content_terms("whats ur returns policy") == {"return", "policy"}
    assert content_terms("how do i get something") == frozenset()


def test_passage_terms_are_the_content_words_of_titles_sections_and_texts():
    passages = [hit(0.5, "Standard shipping takes 3-5 business days.", "Shipping times", ""),
                hit(0.4, "We ship to Canada.", "International shipping", "")]
    found = passage_terms(passages)
    assert content_terms("how long does shipping to canada take") - found == {"long"}
    assert not content_terms("do you sell kayaks") & found  # sell, kayak: neither
    assert content_terms("return windows") <= passage_terms([hit(0.5, "nothing here")])  # the section heading


# a model on the hashing fake's name: similarity, sentence, missing words and alignment each count, by hand
MODEL = AnswerModel(FEATURES, (0.5, 0.5, 0.5, 0.5, 0.0), (0.1, 0.1, 0.25, 0.1, 0.1), (1.0, 1.0, -1.0, 1.0, 1.0),
                    0.0, 0.5, "hashing")


class NamedSentences(FixedSentences):
    """``FixedSentences`` on an embedder with a name (the model applies only to its own embedder)."""

    def __init__(self, score: float, name: str = "hashing", alignment: float = 0.5) -> None:
        super().__init__(score, alignment)
        self.embedder = SimpleNamespace(name=name)


def test_the_probability_is_the_logistic_of_the_standardised_weighted_sum():
    middle = {"similarity": 0.5, "sentence": 0.5, "missing": 0.5, "aligned": 0.5, "precedent": 0.0}
    assert MODEL.probability(middle) == pytest.approx(0.5)
    z = (0.6 - 0.5) / 0.1 + (0.7 - 0.5) / 0.1 - (0.0 - 0.5) / 0.25 + (0.4 - 0.5) / 0.1 + (0.05 - 0.0) / 0.1
    features = {"similarity": 0.6, "sentence": 0.7, "missing": 0.0, "aligned": 0.4, "precedent": 0.05}
    assert MODEL.probability(features) == pytest.approx(1 / (1 + math.exp(-z)))
    assert MODEL.answers({**middle, "similarity": 0.6, "sentence": 0.7, "missing": 0.0})
    assert not MODEL.answers({**middle, "similarity": 0.45, "sentence": 0.45, "missing": 1.0})
    assert not MODEL.answers({**middle, "similarity": 0.6, "sentence": 0.6, "missing": 0.0, "aligned": 0.1})
    assert not MODEL.answers({**middle, "similarity": 0.55, "sentence": 0.55, "precedent": -0.3})  # a known gap


def test_below_the_floor_the_rule_declines_without_asking_the_model():
    rule, sentences = AnswerRule(0.4, MODEL), NamedSentences(0.99)
    low = rule.decide("how long do i have to return earbuds", [hit(0.39), hit(0.2)], sentences)
    assert (low.answerable, low.reason, low.probability) == (False, "below_floor", None)
    assert sentences.calls == 0 and not rule.decide("anything", [], sentences).answerable


def test_above_the_floor_the_model_weighs_cosine_sentence_and_missing_words():
    rule = AnswerRule(0.3, MODEL)
    covered = rule.decide("can i return earbuds", [hit(0.5)], NamedSentences(0.6))  # return, earbud: in the passage
    assert (covered.answerable, covered.reason) == (True, "model")
    assert covered.features == {"similarity": 0.5, "sentence": 0.6, "missing": 0.0, "aligned": 0.5}  # no precedents
    assert covered.probability == pytest.approx(MODEL.probability(covered.features))
    # the same cosines, but the question's words are nowhere in the passage: a near miss
    near_miss = rule.decide("how do i clean a wool sweater", [hit(0.5)], NamedSentences(0.6))
    assert (near_miss.answerable, near_miss.reason, near_miss.features["missing"]) == (False, "unsupported", 1.0)
    # one sentence that says it rescues a question worded the shopper's way
    assert rule.decide("how do i clean a wool sweater", [hit(0.5)], NamedSentences(0.95)).answerable


def test_without_a_model_for_this_embedder_the_floor_alone_decides(caplog):
    rule = AnswerRule(0.4, MODEL)
    for sentences in (None, NamedSentences(0.0, "all-MiniLM-L6-v2")):
        d = rule.decide("how do i clean a wool sweater", [hit(0.45)], sentences)
        assert (d.answerable, d.reason, d.features) == (True, "floor", None)
    assert "refit" in caplog.text  # the other embedder is named in a warning
    for similarity in (0.2, 0.449, 0.45, 0.8):
        d = AnswerRule.floor(0.45).decide("do you sell kayaks", [hit(similarity)], NamedSentences(0.0))
        assert d.answerable == (similarity >= 0.45) and d.probability is None


def test_missing_weight_weighs_words_by_the_help_centres_idf():
    passages = [hit(0.5, "Standard shipping to Canada takes 5 days.", "Shipping", "")]
    vocab = SimpleNamespace(idf={"ship": 0.1, "canada": 2.0, "kayak": 3.0}, n=10)
    assert missing_weight("shipping to canada", passages, vocab) == 0.0
    assert missing_weight("ship kayaks to canada", passages, vocab) == pytest.approx(3.0 / 5.1)
    unseen = math.log(1 + 10.5 / 0.5)  # a word no chunk uses: BM25's idf of a term in none
    assert missing_weight("ship a snowboard", passages, vocab) == pytest.approx(unseen / (unseen + 0.1))
    assert missing_weight("ship kayaks", passages, None) == 0.5  # no vocabulary: every word weighs the same
    assert missing_weight("how do i", passages, vocab) == 1.0  # no content words: no evidence


def test_from_settings_reads_the_floor_and_the_model_file(tmp_path):
    bundled = AnswerRule.from_settings(load_settings(retrieval_min_score=0.3))
    assert bundled.min_score == 0.3 and bundled.model == AnswerModel.load(MODEL_FILE)
    assert bundled.model.features == FEATURES and 0 < bundled.model.threshold < 1
    path = tmp_path / "model.json"
    MODEL.save(path)
    assert AnswerModel.load(path) == MODEL  # survives save and reload
    assert AnswerRule.from_settings(load_settings(retrieval_answer_model=str(path))).model == MODEL
    with pytest.raises(KnowledgeBaseError, match="--fit"):
        AnswerRule.from_settings(load_settings(retrieval_answer_model=str(tmp_path / "none.json")))


def test_the_floor_must_be_between_0_and_1():
    with pytest.raises(ConfigError, match="retrieval_min_score"):
        load_settings(retrieval_min_score=1.5)


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
    d = AnswerRule(0.4, MODEL).decide("how do i clean a wool sweater", [hit(0.5)], scorer, emb.embed([question])[0])
    assert d.features["sentence"] == pytest.approx(fresh, abs=1e-6)  # the given vector, not the text, was compared


def test_the_sentence_cache_is_bounded():
    scorer = SentenceSimilarity(HashingEmbedder(), max_passages=2)
    for n in range(5):
        scorer.best("q", [hit(0.5, f"Passage number {n}.")])
        assert len(scorer._vectors) <= 2
    assert isinstance(scorer.best("q", [hit(0.5)]), float) and np.isfinite(scorer.best("q", [hit(0.5)]))


def test_group_word_pieces_joins_continuations_and_apostrophes_and_drops_special_tokens():
    pieces = ["[CLS]", "don", "'", "t", "you", "ship", "to", "can", "##ada", "?", "[SEP]", "[PAD]"]
    assert group_word_pieces(pieces) == [("don't", [1, 2, 3]), ("you", [4]), ("ship", [5]), ("to", [6]),
                                         ("canada", [7, 8]), ("?", [9])]


def test_alignment_is_the_idf_weighted_best_word_match_of_the_questions_content_words():
    scorer = SentenceSimilarity(HashingEmbedder())  # a hashed word matches only itself: cosine 1 or ~0
    vocab = SimpleNamespace(idf={"return": 0.5, "earbud": 2.0, "kayak": 3.0}, n=10)
    assert scorer.words
    assert scorer.aligned("can i return earbuds", [hit(0.5)], vocab) == pytest.approx(1.0, abs=1e-6)
    # "kayak" is in no passage: only "return" (idf 0.5) is matched
    assert scorer.aligned("can i return kayaks", [hit(0.5)], vocab) == pytest.approx(0.5 / 3.5, abs=0.05)
    assert scorer.aligned("how do i", [hit(0.5)], vocab) == 0.0  # no content words: no evidence
    assert scorer.aligned("can i return earbuds", [], vocab) == 0.0
    assert term_weight("kayak", vocab) == 3.0 and term_weight("snowboard", vocab) == pytest.approx(math.log(1 + 21))
    assert term_weight("kayak", None) == 1.0


def test_sentences_and_their_words_come_from_one_pass_and_an_embedder_without_words_skips_alignment(caplog):
    emb = CountingEmbedder()
    scorer = SentenceSimilarity(emb)
    scorer.best("q1", [hit(0.5)])
    scorer.aligned("can i return earbuds", [hit(0.5)], None)
    assert emb.calls == [["q1", *[f"Return policy Return windows: {s}" for s in split_sentences(RETURNS)]],
                         ["can i return earbuds"]]  # the passage's words were kept from the first pass

    class SentencesOnly:  # an embedder that gives no word vectors
        name = "hashing"

        def embed(self, texts):
            return HashingEmbedder().embed(texts)

    plain = SentenceSimilarity(SentencesOnly())
    assert not plain.words and plain.aligned("can i return earbuds", [hit(0.5)], None) == 0.0
    assert plain.best("return earbuds", [hit(0.5)]) > 0
    d = AnswerRule(0.4, MODEL).decide("how do i clean a wool sweater", [hit(0.45)], plain)
    assert (d.answerable, d.reason) == (True, "floor") and "word vectors" in caplog.text


def _labelled(*pairs):
    return [LabelledQuestion(text, ("doc",) if ok else ()) for text, ok in pairs]


def test_precedent_is_the_best_answerable_minus_the_best_unanswerable_match_never_the_question_itself():
    emb = HashingEmbedder()
    memory = Precedents(_labelled(("do you ship to canada", True), ("who founded the shop", False),
                                  ("can i return earbuds", True)))
    v = emb.embed(["do you ship to canada", "who founded the shop", "can i return earbuds", "who founded it"])
    assert memory.score(emb, "who founded it") == pytest.approx(float(max(v[0] @ v[3], v[2] @ v[3]) - v[1] @ v[3]))
    assert memory.score(emb, "who founded it") < 0 < memory.score(emb, "do you ship to canada please")
    # a labelled question is not its own precedent (as in fitting: leave-one-out), whatever its case and spaces:
    # without it no unanswerable precedent is left, so no evidence
    assert memory.score(emb, "Who  founded the SHOP") is None
    assert memory.score(emb, "do you ship to canada") == pytest.approx(float(v[2] @ v[0] - v[1] @ v[0]), abs=1e-6)
    given = emb.embed(["who founded it"])[0]
    assert memory.score(emb, "x", given) == pytest.approx(memory.score(emb, "who founded it"))
    assert Precedents(_labelled(("a", True))).score(emb, "a b") is None  # one kind only: no evidence
    assert Precedents([]).score(emb, "a") is None and len(memory) == 3


def test_precedents_are_embedded_once_per_embedder():
    emb = CountingEmbedder()
    memory = Precedents(_labelled(("do you ship to canada", True), ("who founded the shop", False)))
    memory.score(emb, "q1")
    memory.score(emb, "q2", emb.embed(["q2"])[0])
    assert emb.calls.count(["do you ship to canada", "who founded the shop"]) == 1
    assert emb.calls[1:] == [["q1"], ["q2"]]  # later calls embed only the question (and not when given its vector)


def test_precedents_setting_bundled_a_folder_or_none(tmp_path):
    bundled = load_precedents("")
    assert bundled is load_precedents("") and len(bundled) == len(load_questions())
    assert load_precedents("none") is None and load_precedents("None") is None
    (tmp_path / "mine.yaml").write_text('- {text: "do you sell kayaks", docs: [kayaks]}\n- {text: "who is ceo"}\n')
    assert len(load_precedents(str(tmp_path))) == 2
    with pytest.raises(KnowledgeBaseError, match="retrieval_precedents"):
        load_precedents(str(tmp_path / "missing"))
    rule = AnswerRule.from_settings(load_settings(retrieval_precedents="none"))
    assert rule.precedents is None and rule == AnswerRule.from_settings(load_settings())  # not compared
    d = AnswerRule(0.3, MODEL).decide("can i return earbuds", [hit(0.5)], NamedSentences(0.6))
    assert "precedent" not in d.features  # no precedents: no evidence either way


def test_precedents_are_silent_where_the_help_centre_changed_since_they_were_labelled():
    emb = HashingEmbedder()
    questions = _labelled(("do you ship to canada", True), ("do you offer gift wrapping", False))
    known = SimpleNamespace(chunk_id="c1", doc_id="shipping", section="Zones")
    memory = Precedents(questions, known_sections=frozenset({("shipping", "Zones")}))
    assert memory.score(emb, "can you gift wrap it", None, [known]) < 0  # a known gap, nothing new found
    # the section was edited (another chunk id, same article and heading): still what was labelled
    assert memory.score(emb, "can you gift wrap it", None, [SimpleNamespace(chunk_id="c2", doc_id="shipping",
                                                                            section="Zones")]) < 0
    # a shop wrote about gift wrapping: a new article, or a new section of an old one
    for new in (SimpleNamespace(chunk_id="c3", doc_id="gift-wrap", section="Options"),
                SimpleNamespace(chunk_id="c4", doc_id="shipping", section="Gift wrapping")):
        assert memory.score(emb, "can you gift wrap it", None, [known, new]) is None
        assert Precedents(questions).score(emb, "can you gift wrap it", None, [new]) < 0  # own labels: no check
    # the bundled ones know the repo's sections; "?" and case do not make a labelled question another one
    bundled = load_precedents("")
    assert bundled.known_sections == frozenset((c.doc_id, c.section) for c in load_chunks(DOCS_DIR))
    assert memory.score(emb, "Do you offer gift-wrapping?") is None  # itself left out: no unanswerable left


def test_without_a_precedent_the_model_fitted_without_it_decides():
    """An edited article's chunks are not what the precedents were labelled against: the fallback, fitted
    without ``precedent``, decides instead of reading a missing precedent as 0 (which is not neutral)."""
    fallback = AnswerModel(FEATURES[:4], (0.5, 0.5, 0.5, 0.5), (0.1, 0.1, 0.25, 0.1), (1.0, 1.0, -1.0, 1.0), 0.0, 0.4,
                           "hashing")
    full = dataclasses.replace(MODEL, mean=(0.5, 0.5, 0.5, 0.5, 0.5), fallback=fallback)
    values = {"similarity": 0.5, "sentence": 0.5, "missing": 0.5, "aligned": 0.49}
    assert full.for_values(values) is fallback and full.for_values({**values, "precedent": 0.1}) is full
    assert fallback.answers(values)  # 0.475 >= 0.4
    assert not full.answers({**values, "precedent": 0.0})  # 0 is far below the precedent's mean of 0.5
    d = AnswerRule(0.3, full).decide("can i return earbuds", [hit(0.5)], NamedSentences(0.5, alignment=0.49))
    assert (d.answerable, d.threshold, "precedent" in d.features) == (True, 0.4, False)
    assert MODEL.for_values(values) is MODEL  # a model file without a fallback: the missing one at its mean
    assert MODEL.probability(values) == pytest.approx(MODEL.probability({**values, "precedent": MODEL.mean[4]}))
    with pytest.raises(KeyError):  # only an optional feature may be missing
        MODEL.probability({k: v for k, v in values.items() if k != "aligned"})


def test_fitting_gives_a_fallback_without_the_optional_features_and_both_survive_the_file(tmp_path):
    rng = np.random.default_rng(0)
    labels = [bool(i % 3) for i in range(90)]
    rows = [{f: float(rng.normal(0.6 if ok else 0.4, 0.1)) for f in FEATURES} for ok in labels]
    model = fit(rows, labels, "hashing", target=0.9, floor=0.0)
    assert model.features == FEATURES and model.fallback.features == FEATURES[:4]
    assert model.fallback.fallback is None and "cross_validation" in model.fallback.about
    model.save(tmp_path / "m.json")
    assert AnswerModel.load(tmp_path / "m.json") == model
    alone = fit(rows, labels, "hashing", target=0.9, floor=0.0, features=("precedent",))
    assert alone.fallback is None and alone.for_values({"similarity": 0.5}) is alone  # nothing to fall back on
    (tmp_path / "bad.json").write_text('{"features": ["a", "b"], "mean": [0], "scale": [1], "weights": [1], '
                                       '"intercept": 0, "threshold": 0.5, "embedder": "x"}')
    with pytest.raises(KnowledgeBaseError, match="malformed"):
        AnswerModel.load(tmp_path / "bad.json")
