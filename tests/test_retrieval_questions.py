"""The labelled shopper questions are a fair benchmark: enough of them, valid labels, own wording."""

import re
from collections import Counter

import pytest
import yaml

from knowledge_base.errors import KnowledgeBaseError
from knowledge_base.labelled import QUESTIONS_DIR, load_questions
from knowledge_base.loader import load_articles

QUESTIONS = load_questions()
HELDOUT = load_questions(QUESTIONS_DIR.parent / "questions_heldout")
ARTICLES = {a.id: a for a in load_articles()}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def test_enough_answerable_and_unanswerable_questions():
    answerable = [q for q in QUESTIONS if q.answerable]
    assert len(answerable) >= 150 and len(QUESTIONS) - len(answerable) >= 30
    covered = {q.docs[0] for q in answerable}
    assert covered == set(ARTICLES), f"articles without a question: {set(ARTICLES) - covered}"


def test_labels_name_existing_articles_and_questions_do_not_repeat():
    for q in QUESTIONS:
        assert set(q.docs) <= set(ARTICLES), (q.source, set(q.docs) - set(ARTICLES))
        assert len(set(q.docs)) == len(q.docs), q.source
    repeated = [t for t, n in Counter(" ".join(_words(q.text)) for q in QUESTIONS).items() if n > 1]
    assert not repeated


def test_held_out_questions_are_valid_and_none_is_a_training_question():
    """The out-of-sample check would not be one if a held-out question were also learned from."""
    trained = {" ".join(_words(q.text)) for q in QUESTIONS}
    assert len(HELDOUT) >= 90 and {q.answerable for q in HELDOUT} == {True, False}
    for q in HELDOUT:
        assert set(q.docs) <= set(ARTICLES), (q.source, set(q.docs) - set(ARTICLES))
        assert " ".join(_words(q.text)) not in trained, q.text


def test_questions_are_not_copied_from_the_articles():
    """No question shares a run of 6 words with any article (shoppers do not quote the help centre)."""
    grams = set()
    for a in ARTICLES.values():
        w = _words(f"{a.title} {a.body}")
        grams.update(" ".join(w[i:i + 6]) for i in range(len(w) - 5))
    for q in QUESTIONS:
        w = _words(q.text)
        copied = [" ".join(w[i:i + 6]) for i in range(len(w) - 5) if " ".join(w[i:i + 6]) in grams]
        assert not copied, (q.text, copied)


def test_a_malformed_question_file_is_refused(tmp_path):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump([{"text": "hi", "doc": ["x"]}]))
    with pytest.raises(KnowledgeBaseError, match=r"bad\.yaml item 1"):
        load_questions(tmp_path)
