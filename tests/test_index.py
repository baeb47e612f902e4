"""The Chroma index (real, persistent) syncs by content hash: exactly what changed is touched."""

from pathlib import Path

from knowledge_base.embedder import HashingEmbedder
from knowledge_base.index import ChromaIndex
from knowledge_base.loader import chunk_article, load_chunks, parse_article

ARTICLE = """---
id: {id}
title: {title}
category: shipping
url: https://shop.example/{id}
---
Intro about {title}.

## Costs
Standard shipping costs $5.95.

## Times
{times}
"""


def write(d: Path, id: str, title: str, times: str = "Standard takes 3-5 business days.") -> None:
    (d / f"{id}.md").write_text(ARTICLE.format(id=id, title=title, times=times))


def test_chunks_by_heading_with_stable_content_ids():
    a = parse_article(ARTICLE.format(id="x", title="Shipping", times="Fast."), "x.md")
    chunks = chunk_article(a)
    assert [c.section for c in chunks] == ["Costs", "Times"]
    assert chunks[0].text.startswith("Intro about Shipping.")
    assert chunks == chunk_article(a)  # same content, same ids
    assert all(c.id.startswith("x:") for c in chunks)


def test_sync_adds_updates_and_deletes_exactly_what_changed(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, "ship", "Shipping")
    write(docs, "pay", "Payment")
    index = ChromaIndex("tst", path=tmp_path / "chroma")
    emb = HashingEmbedder()
    first = index.sync(load_chunks(docs), emb)
    assert (first.added, first.deleted, first.unchanged) == (4, 0, 0)
    again = index.sync(load_chunks(docs), emb)
    assert (again.added, again.deleted, again.unchanged) == (0, 0, 4)
    write(docs, "ship", "Shipping", times="Standard takes 2-4 business days.")  # edit one section
    (docs / "pay.md").unlink()  # delete an article
    write(docs, "gift", "Gift cards")  # add one
    third = index.sync(load_chunks(docs), emb)
    assert (third.added, third.deleted, third.unchanged) == (1 + 2, 1 + 2, 1)
    assert index.count() == 4
    # a fresh client on the same folder sees the same collection (persistent)
    reopened = ChromaIndex("tst", path=tmp_path / "chroma")
    assert reopened.ids() == index.ids()
    hits = reopened.query(emb.embed(["Standard takes 2-4 business days"])[0], 1)
    assert hits[0].doc_id == "ship" and hits[0].section == "Times"
