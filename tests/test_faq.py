"""The FAQ handler: the relevance floor, answers from the best passage's own sentences, citations."""

import pytest

from app.faq import FaqHandler, best_sentences
from app.schema import Passage, Reply
from app.templates import citation, render
from app.ui import answerability_line, summary_markdown
from knowledge_base.answer_model import FEATURES, AnswerModel
from knowledge_base.answerable import AnswerRule, SentenceSimilarity
from knowledge_base.batch_search import search_records
from knowledge_base.embedder import HashingEmbedder
from knowledge_base.index import ChromaIndex, Hit
from knowledge_base.loader import load_chunks
from knowledge_base.retriever import HybridRetriever
from tests.test_index import write


@pytest.fixture()
def retriever(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, "ship", "Shipping", times="Standard takes 3-5 business days. Express takes 1-2 business days.")
    write(docs, "gift", "Gift cards", times="Gift cards never expire. They work on every order.")
    index = ChromaIndex("faq", path=tmp_path / "chroma")
    index.sync(load_chunks(docs), HashingEmbedder())
    return HybridRetriever(index, HashingEmbedder(), rrf_k=5, candidates=10)


def test_answers_from_the_best_passage_and_keeps_its_cosine(retriever):
    facts = FaqHandler(retriever, top_k=3, min_score=0.1).handle("do gift cards expire")
    assert facts.kind == "faq_answer" and facts.passages[0].doc_id == "gift"
    assert "never expire" in facts.data["answer"] and facts.data["title"] == "Gift cards"
    top = retriever.search("do gift cards expire", 1)[0]
    assert facts.passages[0].score == round(top.similarity, 4)
    assert all(p.score >= 0.1 for p in facts.passages) and len(facts.passages) <= 2


def test_below_the_floor_it_declines_and_offers_a_person(retriever):
    facts = FaqHandler(retriever, top_k=3, min_score=0.99).handle("do gift cards expire")
    assert facts.kind == "faq_unknown" and facts.handoff and facts.choices == ("Talk to a person",)
    assert not facts.use_model and facts.passages  # the staff panel still sees what was found
    assert facts.answerability["reason"] == "below_floor" and facts.answerability["probability"] is None
    assert facts.data == {} and "closest" not in render(facts)  # nothing near enough to name
    assert answerability_line(facts.answerability).startswith("declined (below_floor): best cosine 0.")


def test_a_top_hit_under_the_floor_is_skipped_for_the_next_one_above_it(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, "ship", "Shipping")
    write(docs, "tty", "Phone support", times="Call us any weekday.")
    index = ChromaIndex("faq_skip", path=tmp_path / "chroma")
    index.sync(load_chunks(docs), HashingEmbedder())
    # dense weight 0: ranked by BM25 alone (the rare "weekday" first), each hit still carries its cosine
    retriever = HybridRetriever(index, HashingEmbedder(), rrf_k=5, candidates=10, dense_weight=0.0)
    query = "costs costs costs weekday"
    hits = retriever.search(query, 3)
    best = max(hits, key=lambda h: h.similarity)
    assert hits[0].doc_id == "tty" and best is not hits[0]
    facts = FaqHandler(retriever, top_k=3, min_score=best.similarity).handle(query)
    assert facts.kind == "faq_answer" and [p.section for p in facts.passages] == [best.section]
    assert facts.passages[0].doc_id == best.doc_id == "ship"


def test_the_template_answer_is_the_passages_own_sentences():
    text = "Standard takes 3-5 days.\n- Express takes 1-2 days.\nPickup is free."
    answer = best_sentences(text, "how long does express take", limit=1)
    assert answer == "Express takes 1-2 days."
    assert set(best_sentences(text, "", limit=3).split(". ")) <= set(text.replace("- ", "").replace("\n", " ")
                                                                     .split(". "))


def test_citation_names_title_and_url_and_an_imported_pair_without_url_by_title():
    a = Passage("ship", "Shipping", "https://shop.example/ship", "", "x", 0.9)
    b = Passage("faq-dog", "Can I bring my dog?", "", "", "y", 0.8)
    assert citation((a, a, b)) == "Source: Shipping (https://shop.example/ship); Can I bring my dog?"
    assert citation(()) == ""


class FixedRetriever:
    """Returns the same hits for any question (the handler's decision is what is under test)."""

    def __init__(self, hits):
        self.hits = hits

    def search(self, query, k):
        return self.hits[:k]

    def search_batch(self, queries, k):
        return [self.hits[:k] for _ in queries]


def _hit(similarity, doc="returns", section="Return windows",
         text="Electronics, including earbuds, can be returned within 15 days of delivery."):
    return Hit(f"{doc}:{section}", doc, "Return policy", f"https://shop.example/{doc}", section, text, similarity)


# a model fitted on the hashing fake's name, by hand: cosine, best sentence, missing words, word alignment
# and precedent
MODEL = AnswerModel(FEATURES, (0.4, 0.4, 0.5, 0.5, 0.0), (0.1, 0.1, 0.25, 0.25, 0.1), (1.0, 1.0, -1.5, 0.5, 0.5),
                    0.0, 0.5, "hashing")


def test_from_settings_applies_the_learned_rule_with_the_embedder_it_was_fitted_on(settings, tmp_path):
    MODEL.save(tmp_path / "model.json")
    s = settings.replace(retrieval_min_score=0.3, retrieval_answer_model=str(tmp_path / "model.json"))
    retriever = FixedRetriever([_hit(0.45), _hit(0.3, "gift", "Expiry", "Never.")])
    handler = FaqHandler.from_settings(retriever, s, HashingEmbedder())
    assert handler.rule == AnswerRule(0.3, MODEL) and handler.top_k == s.retrieval_top_k
    covered = handler.handle("can earbuds be returned within 15 days")
    assert covered.kind == "faq_answer" and [p.doc_id for p in covered.passages] == ["returns", "gift"]
    assert "15 days" in covered.data["answer"]
    near_miss = handler.handle("how do i clean a wool sweater")  # same cosine, words nowhere in the passages
    assert near_miss.kind == "faq_unknown" and near_miss.handoff and near_miss.passages
    # the passages were relevant, the model found no answer in them: the closest article is named, not quoted
    assert near_miss.data == {"closest": {"title": "Return policy", "url": "https://shop.example/returns"}}
    said = render(near_miss)
    assert 'closest article I found is "Return policy" (https://shop.example/returns)' in said
    assert "15 days" not in said and said.endswith("connect you with a person?")
    # the decision travels with the facts, for the staff panel: the verdict, why, and what the model read
    for facts, verdict, reason in ((covered, True, "model"), (near_miss, False, "unsupported")):
        a = facts.answerability
        assert (a["answerable"], a["reason"], a["threshold"]) == (verdict, reason, 0.5)
        # the bundled precedents were labelled against the repo's articles, not these passages: silent
        assert set(a["features"]) == set(FEATURES) - {"precedent"} and (a["probability"] >= 0.5) == verdict
    assert summary_markdown(Reply("s", "t", "faq.x", 0.9, "faq", answerability=near_miss.answerability)).count(
        f"**Answerability** declined: probability {near_miss.answerability['probability']:.2f} < 0.50 (similarity") == 1
    assert "no precedent for these passages" in answerability_line(near_miss.answerability)
    # without the embedder (no sentence check), the floor alone: the near miss would be answered
    assert FaqHandler.from_settings(retriever, s).handle("how do i clean a wool sweater").kind == "faq_answer"


def test_the_bundled_model_is_fitted_on_minilm_so_the_fakes_get_the_floor(settings):
    handler = FaqHandler.from_settings(FixedRetriever([_hit(0.45)]), settings.replace(retrieval_min_score=0.4),
                                       HashingEmbedder())
    assert handler.rule.model is not None and not handler.rule.applies(handler.sentences)
    assert handler.handle("how do i clean a wool sweater").kind == "faq_answer"  # 0.45 >= the floor
    assert FaqHandler.from_settings(FixedRetriever([_hit(0.35)]), settings.replace(retrieval_min_score=0.4),
                                    HashingEmbedder()).handle("can i return earbuds").kind == "faq_unknown"


def test_batch_search_marks_answerable_exactly_what_the_handler_answers(retriever):
    rule = AnswerRule(0.1, MODEL)
    sentences = SentenceSimilarity(HashingEmbedder())
    handler = FaqHandler(retriever, 3, rule.min_score, rule, sentences)
    questions = ["do gift cards expire", "how long does express take", "do you sell kayaks", "gift", "standard"]
    records = [{"text": q} for q in questions]
    marked = [r["answerable"] for r in search_records(records, retriever, 2, rule.min_score, 3, batch=2,
                                                       rule=rule, sentences=sentences)]
    answered = [handler.handle(q).kind == "faq_answer" for q in questions]
    assert marked == answered and True in marked and False in marked
