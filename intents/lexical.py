"""Lexical features for the intent head: TF-IDF over character and word n-grams.

Why beside the sentence embedding: MiniLM maps "my amazon order" close to "my order" and smooths
over typos unevenly; character n-grams catch misspellings ("cancle", "refnud") and word n-grams
catch names that change the meaning (another shop's name, "not", "instead"). The vocabulary and
idf weights are plain data (JSON + arrays), and the transform is a few lines of numpy, so a saved
model needs no pickles and reloads with identical features.

Scheme (sklearn's ``TfidfVectorizer`` with ``sublinear_tf``, smooth idf, l2 norm, per block):
characters: n-grams of 2..5 inside each lower-cased word padded with spaces ("char_wb");
words: unigrams and bigrams of ``\\w+`` tokens. Each block is l2-normalised, then weighted.
Before both, every name in ``lexicon/other_businesses.txt`` becomes one token (``xbusinessx``), so
what the head learns from "my shein parcel" also covers "my zalando parcel" (names never seen in a
training example); the encoder still reads the raw text.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_WORD = re.compile(r"\w+")
VOCAB_FILE = "lexical.json"
BUSINESS_NAMES_FILE = Path(__file__).parent / "lexicon" / "other_businesses.txt"
BUSINESS_TOKEN = "xbusinessx"  # what every other business's name becomes before n-grams are taken


def load_business_names(path: Path = BUSINESS_NAMES_FILE) -> tuple[str, ...]:
    """One name a line; ``#`` starts a comment."""
    lines = (line.split("#", 1)[0].strip().lower() for line in path.read_text(encoding="utf-8").splitlines())
    return tuple(dict.fromkeys(line for line in lines if line))


def name_pattern(names: Sequence[str]) -> re.Pattern[str] | None:
    """Whole-word, case-insensitive, longest name first, with an optional possessive 's."""
    if not names:
        return None
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![\w&])(?:{alternatives})(?:'s)?(?![\w&])", re.IGNORECASE)


def char_ngrams(text: str, low: int = 2, high: int = 5) -> list[str]:
    grams: list[str] = []
    for word in text.lower().split():
        padded = f" {word} "
        for n in range(low, high + 1):
            if n > len(padded):
                break
            grams.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
    return grams


def word_ngrams(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


ANALYZERS = {"char": char_ngrams, "word": word_ngrams}


@dataclass
class _Block:
    kind: str
    weight: float
    vocab: dict[str, int]
    idf: np.ndarray


class LexicalFeaturizer:
    """Fit on the training texts; ``transform`` gives a sparse (n, dim) float64 matrix."""

    def __init__(self, blocks: Sequence[_Block], business_names: Sequence[str] = ()) -> None:
        self.blocks = list(blocks)
        self.offsets = np.cumsum([0] + [len(b.vocab) for b in self.blocks])
        self.business_names = tuple(business_names)
        self._names = name_pattern(self.business_names)

    def normalise(self, text: str) -> str:
        """Another business's name becomes one token, so "my zara order" reads like "my amazon order"."""
        return self._names.sub(BUSINESS_TOKEN, text) if self._names else text

    @property
    def dim(self) -> int:
        return int(self.offsets[-1])

    @classmethod
    def fit(cls, texts: Sequence[str], char_weight: float = 1.0, word_weight: float = 1.0,
            min_df: int = 2, business_names: Sequence[str] = ()) -> LexicalFeaturizer:
        names = name_pattern(business_names)
        texts = [names.sub(BUSINESS_TOKEN, t) for t in texts] if names else list(texts)
        blocks = []
        for kind, weight in (("char", char_weight), ("word", word_weight)):
            if weight <= 0:
                continue
            df: Counter[str] = Counter()
            for text in texts:
                df.update(set(ANALYZERS[kind](text)))
            terms = sorted(t for t, c in df.items() if c >= min_df)
            n = len(texts)
            idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in terms], dtype=np.float64)
            blocks.append(_Block(kind, weight, {t: i for i, t in enumerate(terms)}, idf))
        return cls(blocks, business_names)

    def transform(self, texts: Sequence[str]):
        """A scipy CSR matrix (n, dim): sparse, because the vocabulary is tens of thousands wide."""
        from scipy import sparse  # only when features are built

        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for row, text in enumerate(texts):
            text = self.normalise(text)
            for block, offset in zip(self.blocks, self.offsets, strict=False):
                counts = Counter(g for g in ANALYZERS[block.kind](text) if g in block.vocab)
                if not counts:
                    continue
                idx = np.fromiter((block.vocab[g] for g in counts), dtype=np.int64, count=len(counts))
                tf = np.fromiter((1.0 + math.log(c) for c in counts.values()), dtype=np.float64, count=len(counts))
                weighted = tf * block.idf[idx]
                rows.append(np.full(len(idx), row))
                cols.append(offset + idx)
                vals.append(block.weight * weighted / np.linalg.norm(weighted))
        if not vals:
            return sparse.csr_matrix((len(texts), self.dim), dtype=np.float64)
        return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                 shape=(len(texts), self.dim), dtype=np.float64)

    # ---- persistence: vocabulary as JSON, idf as arrays in the model's npz ----------------------
    def to_json(self) -> dict:
        return {"business_names": list(self.business_names),
                "blocks": [{"kind": b.kind, "weight": b.weight, "terms": sorted(b.vocab, key=b.vocab.__getitem__)}
                           for b in self.blocks]}

    def arrays(self) -> dict[str, np.ndarray]:
        return {f"idf_{b.kind}": b.idf for b in self.blocks}

    @classmethod
    def from_saved(cls, spec: dict, arrays: dict[str, np.ndarray]) -> LexicalFeaturizer:
        blocks = []
        for b in spec["blocks"]:
            idf = np.asarray(arrays[f"idf_{b['kind']}"], dtype=np.float64)
            if len(idf) != len(b["terms"]):
                raise ValueError(f"lexical block {b['kind']}: {len(b['terms'])} terms but {len(idf)} idf weights")
            blocks.append(_Block(b["kind"], float(b["weight"]), {t: i for i, t in enumerate(b["terms"])}, idf))
        return cls(blocks, spec.get("business_names", ()))

    def save(self, directory: Path) -> None:
        (directory / VOCAB_FILE).write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")

    @staticmethod
    def saved_in(directory: Path) -> bool:
        return (directory / VOCAB_FILE).is_file()

    @staticmethod
    def load_spec(directory: Path) -> dict:
        return json.loads((directory / VOCAB_FILE).read_text(encoding="utf-8"))

