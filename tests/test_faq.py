"""The FAQ handler: the relevance floor, answers from the best passage's own sentences, citations."""

import pytest

from app.faq import FaqHandler, best_sentences
from app.schema import Passage
from app.templates import citation
from knowledge_base.embedder import HashingEmbedder
from knowledge_base.index import ChromaIndex
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
