"""Articles (markdown with front matter) and their heading chunks with content-hash ids."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from knowledge_base.errors import ArticleError

DOCS_DIR = Path(__file__).parent / "docs"
REQUIRED = ("id", "title", "category")  # and ``url``, empty only for imported pairs that had none

__all__ = ["DOCS_DIR", "Article", "ArticleError", "Chunk", "chunk_article", "load_articles", "load_chunks",
           "parse_article"]


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    category: str
    url: str
    body: str
    path: str = ""


@dataclass(frozen=True)
class Chunk:
    id: str  # hash of the content: unchanged text keeps its id, so re-indexing touches only changes
    doc_id: str
    title: str
    url: str
    category: str
    section: str
    text: str

    @property
    def embed_text(self) -> str:
        return "\n".join(p for p in (self.title, self.section, self.text) if p)


def parse_article(text: str, path: str = "") -> Article:
    m = re.match(r"^---\s*\n(.*?)\n---\s*\n(.*)$", text, re.DOTALL)
    if not m:
        raise ArticleError(f"{path}: no front matter (--- id/title/category/url ---)")
    meta = yaml.safe_load(m.group(1)) or {}
    missing = [k for k in REQUIRED if not meta.get(k)] + ([] if "url" in meta else ["url"])
    if missing:
        raise ArticleError(f"{path}: front matter lacks {missing}")
    return Article(str(meta["id"]), str(meta["title"]), str(meta["category"]), str(meta["url"] or ""),
                   m.group(2).strip(), path)


def load_articles(*directories: Path) -> list[Article]:
    dirs = directories or (DOCS_DIR,)
    articles = [parse_article(p.read_text(encoding="utf-8"), str(p))
                for d in dirs if d.is_dir() for p in sorted(d.glob("*.md"))]
    seen: dict[str, str] = {}
    for a in articles:
        if a.id in seen:
            raise ArticleError(f"duplicate article id {a.id!r} in {a.path} and {seen[a.id]}")
        seen[a.id] = a.path
    return articles


def chunk_article(article: Article) -> list[Chunk]:
    """One chunk per ``## `` section; the intro joins the first section (alone it rarely answers)."""
    parts = re.split(r"^##\s+(.+)$", article.body, flags=re.MULTILINE)
    sections = list(zip(parts[1::2], parts[2::2], strict=False))
    if sections:
        sections[0] = (sections[0][0], f"{parts[0].strip()}\n\n{sections[0][1].strip()}".strip())
    else:
        sections = [("", parts[0])]
    chunks = []
    for heading, body in sections:
        body = body.strip()
        if not body:
            continue
        text = f"{article.title}\n{heading.strip()}\n{body}" if heading else f"{article.title}\n{body}"
        digest = hashlib.sha256(f"{article.id}\x00{article.url}\x00{text}".encode()).hexdigest()[:24]
        chunks.append(Chunk(f"{article.id}:{digest}", article.id, article.title, article.url,
                            article.category, heading.strip(), body))
    return chunks


def load_chunks(*directories: Path) -> list[Chunk]:
    return [c for a in load_articles(*directories) for c in chunk_article(a)]
