"""Retrieval quality with the real bundled MiniLM on the labelled shopper questions (integration).

Quality bars only (no timing): the fused ranking must beat dense and BM25 alone, and the answerability
rule (the bundled model, fitted on MiniLM) must decline >= 88% of the unanswerable questions with fewer
false declines than the cosine floor alone at the same decline rate, and most of the held-out ones.
`python -m evals.bench_retrieval` prints the numbers.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from app.factory import faq_retriever
from app.faq import FaqHandler
from evals.bench_retrieval import decline_rates, doc_ranking, lowest_floor, ranking_metrics, relevance
from knowledge_base.answerable import AnswerRule, SentenceSimilarity, vocabulary
from knowledge_base.labelled import QUESTIONS_DIR, load_questions
from knowledge_base.loader import DOCS_DIR, load_chunks
from knowledge_base.precedents import load_precedents
from knowledge_base.retriever import DenseRetriever, LexicalRetriever

pytestmark = pytest.mark.integration
QUESTIONS = load_questions()


@pytest.fixture(scope="module")
def results(real_settings, real_models):
    texts = [q.text for q in QUESTIONS]
    fused = faq_retriever(real_settings, real_models.embedder, real_models.index)
    out = {}
    for name, retriever in (("fused", fused), ("dense", DenseRetriever(real_models.index, real_models.embedder)),
                            ("bm25", LexicalRetriever(real_models.index))):
        out[name] = retriever.search_batch(texts, 10)
    return out


def _metrics(hits):
    answerable = [(h, q) for h, q in zip(hits, QUESTIONS, strict=True) if q.answerable]
    return ranking_metrics([doc_ranking(h) for h, _ in answerable], [q.docs for _, q in answerable])


def test_fused_retrieval_beats_dense_and_bm25_alone(results):
    fused, dense, bm25 = (_metrics(results[n]) for n in ("fused", "dense", "bm25"))
    assert fused["hit@3"] >= 0.95, fused
    assert fused["hit@3"] >= max(dense["hit@3"], bm25["hit@3"]), (fused, dense, bm25)
    assert fused["mrr"] > max(dense["mrr"], bm25["mrr"]) and fused["hit@1"] > dense["hit@1"], (fused, dense)


def test_the_rule_declines_most_unanswerable_questions_with_fewer_false_declines(results, real_settings,
                                                                                 real_models):
    top_k = real_settings.retrieval_top_k
    rule, sentences = AnswerRule.from_settings(real_settings), SentenceSimilarity(real_models.embedder)
    fused = faq_retriever(real_settings, real_models.embedder, real_models.index)
    vocab = vocabulary(fused)
    assert rule.applies(sentences)
    declined = [not rule.decide(q.text, h[:top_k], sentences, None, vocab).answerable
                for h, q in zip(results["fused"], QUESTIONS, strict=True)]
    unanswerable = [d for d, q in zip(declined, QUESTIONS, strict=True) if not q.answerable]
    answerable = [d for d, q in zip(declined, QUESTIONS, strict=True) if q.answerable]
    rates = (sum(unanswerable) / len(unanswerable), sum(answerable) / len(answerable))
    # measured 0.923 / 0.075 on 465 + 630 (leave one writer out: 0.925 / 0.064, mean over 9 writers; --target 0.92)
    assert rates[0] >= 0.9 and rates[1] <= 0.1, rates
    signal = [relevance(h, top_k) for h in results["fused"]]
    pos = [s for s, q in zip(signal, QUESTIONS, strict=True) if q.answerable]
    neg = [s for s, q in zip(signal, QUESTIONS, strict=True) if not q.answerable]
    floor_alone = decline_rates(pos, neg, lowest_floor(pos, neg, rates[0]))  # as many declined
    assert rates[1] < floor_alone["false_declines"] - 0.03, (rates, floor_alone)
    heldout = load_questions(QUESTIONS_DIR.parent / "questions_heldout")
    hits = fused.search_batch([q.text for q in heldout], top_k)
    held = [not rule.decide(q.text, h, sentences, None, vocab).answerable for q, h in zip(heldout, hits, strict=True)]
    held_un = [d for d, q in zip(held, heldout, strict=True) if not q.answerable]
    held_ans = [d for d, q in zip(held, heldout, strict=True) if q.answerable]
    # blind8, written after blind1-7 went into the training questions: unanswerable 47 of 49 declined,
    # answerable 7 of 50 wrongly declined (measured once, before anything was changed after seeing it)
    assert len(held_un) == 49 and len(held_ans) == 50
    assert sum(held_un) >= 45 and sum(held_ans) <= 9, (sum(held_un), sum(held_ans))


def test_the_handler_declines_exactly_when_the_rule_does(real_settings, real_models):
    retriever = faq_retriever(real_settings, real_models.embedder, real_models.index)
    handler = FaqHandler.from_settings(retriever, real_settings, real_models.embedder)
    rule, top_k = AnswerRule.from_settings(real_settings), real_settings.retrieval_top_k
    sentences = SentenceSimilarity(real_models.embedder)
    for q in QUESTIONS[::15]:
        hits = retriever.search(q.text, top_k)
        answerable = rule.decide(q.text, hits, sentences, None, vocabulary(retriever)).answerable
        assert (handler.handle(q.text).kind == "faq_unknown") == (not answerable), q.text


def test_a_staff_label_teaches_the_faq_a_gap_shoppers_ask_in_other_words(real_settings, real_models, tmp_path):
    """No article says whether a prepaid Visa card works, yet the rule answers (Visa is accepted; a blind writer
    asked it). Once a support agent labels one wording, another is declined: at once, and after a restart."""
    retriever = faq_retriever(real_settings, real_models.embedder, real_models.index)
    settings = real_settings.replace(data_dir=tmp_path)  # the labels file; the index stays the session's
    handler = FaqHandler.from_settings(retriever, settings, real_models.embedder)
    asked, other = "can i pay with a prepaid visa card", "do u ship to canada"
    assert handler.handle(asked).kind == "faq_answer"  # measured probability 0.80, threshold 0.54
    assert handler.handle(other).kind == "faq_answer"
    label, decision = handler.label("will a prepaid visa gift card from the grocery store work at ur checkout", False)
    assert decision["answerable"] is False and decision["features"]["precedent"] < 0  # the labelled words
    assert label.sections and set(label.sections) <= {(c.doc_id, c.section) for c in load_chunks(DOCS_DIR)}
    facts = handler.handle(asked)
    assert facts.kind == "faq_unknown" and facts.answerability["features"]["precedent"] < 0  # measured 0.30
    assert handler.handle(other).kind == "faq_answer"
    load_precedents.cache_clear()  # as after a restart: the labels are read from the file again
    restarted = FaqHandler.from_settings(retriever, settings, real_models.embedder)
    assert restarted.rule.precedents is not handler.rule.precedents
    assert restarted.handle(asked).kind == "faq_unknown"


def test_word_alignment_reads_each_word_in_its_sentence(real_models):
    """The real MiniLM's word vectors: the whole questions are close to the passage either way, but a word
    naming another thing ("rain" jacket, "venmo") finds no match in it."""
    sentences = SentenceSimilarity(real_models.embedder)
    care = SimpleNamespace(title="Caring for your down jacket", section="Washing", similarity=0.5,
                           text="Wash your down jacket in a front-loading machine on a gentle cycle.")
    pay = SimpleNamespace(title="Payment methods", section="What we accept", similarity=0.5,
                          text="We accept Visa, Mastercard, American Express, Discover, PayPal and Apple Pay.")
    down = sentences.aligned("is the down jacket machine washable", [care], None)
    rain = sentences.aligned("is the rain jacket machine washable", [care], None)
    assert down > rain + 0.1, (down, rain)  # measured 0.94 / 0.76
    paypal = sentences.aligned("do you take paypal", [pay], None)
    venmo = sentences.aligned("do you take venmo", [pay], None)
    assert paypal > venmo + 0.3, (paypal, venmo)  # measured 0.65 / 0.08
    assert sentences.aligned("do u take paypall", [pay], None) > venmo + 0.3  # a typo of a word used counts as found


def test_the_remembered_embedding_of_a_message_is_the_models_own(real_models):
    """The app's embedder (RecentEmbeddings over MiniLM) gives the vectors MiniLM's own ``embed`` gives, in
    batches of mixed lengths (padding) and one text at a time, and its second answer is the remembered one."""
    emb = real_models.embedder
    texts = ["hi", "do you ship to canada", "how do i return a pair of shoes that do not fit me at all"]
    emb.forget()
    direct = emb.inner.embed(texts)
    np.testing.assert_allclose(emb.embed(texts), direct, atol=1e-5)
    np.testing.assert_allclose(emb.embed(texts[1:2]), direct[1:2], atol=1e-5)
    (words,) = emb.embed_words(texts[1:2])
    assert words.words == ("do", "you", "ship", "to", "canada")
    assert emb.embed_words(texts[1:2])[0] is words
