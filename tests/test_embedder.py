"""The shared embedder's memory of recent messages (``RecentEmbeddings``), on the hashing fake."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_base.embedder import HashingEmbedder, RecentEmbeddings, WordEmbedder


class CountingEmbedder(HashingEmbedder):
    """The hashing fake, remembering which method was asked to embed which texts."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list[str]]] = []

    def embed(self, texts, show_progress=False):
        self.calls.append(("embed", list(texts)))
        return super().embed(texts)

    def embed_words(self, texts):
        self.calls.append(("embed_words", list(texts)))
        return super().embed_words(texts)


def test_a_message_is_embedded_once_for_the_classifier_the_retriever_and_the_word_alignment():
    inner = CountingEmbedder()
    emb = RecentEmbeddings(inner)
    message = "where is my order 1042"
    first = emb.embed([message])  # the intent classifier
    again = emb.embed([message])  # the retriever
    (words,) = emb.embed_words([message])  # the answerability check
    assert inner.calls == [("embed_words", [message])]
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first[0], HashingEmbedder().embed([message])[0])
    assert words.words == ("where", "is", "my", "order", "1042")
    assert isinstance(emb, WordEmbedder) and emb.name == "hashing"


def test_only_the_texts_not_remembered_reach_the_model_in_one_call_and_order_is_kept():
    inner = CountingEmbedder()
    emb = RecentEmbeddings(inner)
    emb.embed(["a b", "c d"])
    out = emb.embed(["c d", "e f", "a b", "e f"])
    assert inner.calls == [("embed_words", ["a b", "c d"]), ("embed_words", ["e f"])]
    np.testing.assert_allclose(out, HashingEmbedder().embed(["c d", "e f", "a b", "e f"]))


def test_big_batches_go_straight_to_the_model_and_are_not_remembered():
    inner = CountingEmbedder()
    emb = RecentEmbeddings(inner, max_batch=2)
    texts = ["one", "two", "three"]
    np.testing.assert_allclose(emb.embed(texts), HashingEmbedder().embed(texts))
    emb.embed(["one"])
    assert inner.calls == [("embed", texts), ("embed_words", ["one"])]
    assert emb.embed([]).shape[0] == 0


def test_the_memory_is_bounded_least_recently_used_first_and_can_be_dropped():
    inner = CountingEmbedder()
    emb = RecentEmbeddings(inner, size=2)
    emb.embed(["a"])
    emb.embed(["b"])
    emb.embed(["a"])  # a is now the most recent
    emb.embed(["c"])  # evicts b
    inner.calls.clear()
    emb.embed(["a"])
    emb.embed(["b"])
    assert inner.calls == [("embed_words", ["b"])]
    emb.forget()
    emb.embed(["b"])
    assert inner.calls[-1] == ("embed_words", ["b"])


def test_remembered_vectors_are_read_only():
    emb = RecentEmbeddings(HashingEmbedder())
    (words,) = emb.embed_words(["return my shoes"])
    with pytest.raises(ValueError):
        words.vector[0] = 1.0
    with pytest.raises(ValueError):
        words.word_vectors[0, 0] = 1.0
    emb.embed(["return my shoes"])[0, 0] = 1.0  # embed hands out a copy: the caller may change it
    np.testing.assert_allclose(emb.embed(["return my shoes"]), HashingEmbedder().embed(["return my shoes"]))


def test_a_message_is_embedded_with_the_turn_threads_in_its_own_thread_only():
    """Torch (OpenMP) threads are counted per thread: the request thread embedding a message on one thread
    leaves every other thread's count (the generator's) alone, and its own is restored afterwards."""
    import threading

    import torch

    from knowledge_base.embedder import _torch_threads

    before = torch.get_num_threads()
    inside, entered, leave = {}, threading.Event(), threading.Event()

    def request():
        with _torch_threads(1):
            inside["count"] = torch.get_num_threads()
            entered.set()
            leave.wait(10)
        inside["after"] = torch.get_num_threads()

    worker = threading.Thread(target=request)
    worker.start()
    entered.wait(10)
    assert torch.get_num_threads() == before  # another thread meanwhile
    leave.set()
    worker.join(10)
    assert inside["count"] == 1 and inside["after"] == before


def test_the_app_embedder_remembers_messages_and_uses_the_threads_setting():
    from app.config import load_settings
    from app.factory import Mode, embedder

    emb = embedder(load_settings(threads=1))  # nothing loads until the first text
    assert isinstance(emb, RecentEmbeddings) and emb.inner.query_threads == 1
    assert isinstance(embedder(load_settings(), Mode(fake_models=True)), HashingEmbedder)
