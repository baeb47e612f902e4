"""Learning curve of the FAQ answerability rule: would more labelled shopper questions help?

    python -m evals.learning_curve [--json FILE] [--png FILE] [--fake-models] [--target 0.92]

The labelled questions (knowledge_base/questions) come in sets, one per writer: ``answerable.yaml`` and
``unanswerable.yaml`` the first, then ``blind1_*``, ``blind2_*``, ... written later by people who saw
only the articles. The rule is fitted as ``python -m evals.bench_retrieval --fit`` fits the bundled one
(knowledge_base/answer_model.py), with those questions alone as its precedents, on the first set, then
the first two, and so on; each is measured on the held-out questions (knowledge_base/questions_heldout,
never learned from) and by cross-validation. The last point is the bundled rule's procedure on all the
questions. Then, with that last rule, support agents' corrections (knowledge_base/labels.py): the
held-out sets are asked one after another, and each set's wrongly decided questions are labelled before
the next. Prints tables and writes a JSON report and a chart.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.bench_retrieval import DEPTH, FALLBACK_TARGET, HELDOUT_DIR, TARGET, build_retrievers, writer_folds
from knowledge_base import answer_model
from knowledge_base.answerable import AnswerRule, SentenceSimilarity, evidence, vocabulary
from knowledge_base.labelled import LabelledQuestion, load_questions, writer_sets
from knowledge_base.labels import LABELS_FILE, FaqLabel, LabelStore
from knowledge_base.loader import DOCS_DIR, load_chunks
from knowledge_base.precedents import Precedents


def _count(declined: Sequence[bool], labels: Sequence[bool]) -> dict[str, Any]:
    un = [d for d, a in zip(declined, labels, strict=True) if not a]
    ans = [d for d, a in zip(declined, labels, strict=True) if a]
    return {"unanswerable": len(un), "declined": sum(un), "answerable": len(ans), "wrongly_declined": sum(ans),
            "declined_unanswerable": round(sum(un) / max(1, len(un)), 4),
            "false_declines": round(sum(ans) / max(1, len(ans)), 4)}


def curve(settings: Any, mode: Any, questions: Sequence[LabelledQuestion], heldout: Sequence[LabelledQuestion],
          target: float = TARGET, progress: bool = True) -> dict[str, Any]:
    from tqdm import tqdm

    emb, _index, retrievers, _ = build_retrievers(settings, mode)
    fused, top_k, floor = retrievers["fused"], settings.retrieval_top_k, settings.retrieval_min_score
    vocab, sentences = vocabulary(fused), SentenceSimilarity(emb)
    known = frozenset((c.doc_id, c.section) for c in load_chunks(DOCS_DIR))  # as the bundled precedents know
    texts = [q.text for q in questions]  # searched as deep as the benchmark does, then cut to the rule's top k
    hits = {t: h[:top_k] for t, h in zip(texts, fused.search_batch(texts, DEPTH), strict=True)}
    held_hits = fused.search_batch([q.text for q in heldout], top_k)
    held_labels = [q.answerable for q in heldout]
    sets, points = writer_sets(questions), []
    total = sum(sum(q.writer in sets[:k] for q in questions) + len(heldout) for k in range(1, len(sets) + 1))
    total += len(heldout)  # the corrections, last
    with tqdm(total=total, desc="learning curve", unit="question", disable=not progress) as bar:
        for k in range(1, len(sets) + 1):
            learned = [q for q in questions if q.writer in sets[:k]]
            labels = [q.answerable for q in learned]
            precedents = Precedents(learned, known)
            rows = []
            for q in learned:
                rows.append(evidence(q.text, hits[q.text], sentences, None, vocab, precedents))
                bar.update()
            writers = writer_folds(learned, rows, emb)  # the folds are the writers from three writers on
            model = answer_model.fit(rows, labels, emb.name, target, floor, fallback_target=FALLBACK_TARGET,
                                     writers=writers)
            rule = AnswerRule(floor, model, precedents)
            declined = []
            for q, h in zip(heldout, held_hits, strict=True):
                declined.append(not rule.decide(q.text, h, sentences, None, vocab).answerable)
                bar.update()
            points.append({"sets": sets[:k], "questions": len(learned), "answerable": sum(labels),
                           "unanswerable": len(labels) - sum(labels), "threshold": model.threshold,
                           "cross_validation": answer_model.cross_validate(rows, labels, target, floor,
                                                                           writers=writers),
                           "heldout": _count(declined, held_labels)})
        staff = corrections(AnswerRule(floor, model), questions, known, heldout, held_hits, sentences, vocab, bar)
    return {"embedder": emb.name, "target": target, "floor": floor, "top_k": top_k,
            "heldout_questions": {"answerable": sum(held_labels), "unanswerable": len(heldout) - sum(held_labels)},
            "points": points, "corrections": staff}


def corrections(rule: AnswerRule, questions: Sequence[LabelledQuestion], known: frozenset[tuple[str, str]],
                heldout: Sequence[LabelledQuestion], held_hits: Sequence[Sequence[Any]], sentences: Any, vocab: Any,
                bar: Any) -> list[dict[str, Any]]:
    """Support agents correcting the FAQ (knowledge_base/labels.py): the held-out sets come in the order they
    were written, as if shoppers asked them one set after another; after each, every question the rule
    decided wrongly is labelled (as a support agent would from the transcripts), which the rule reads for
    the next sets. ``rule``: the model fitted on all the labelled questions, with them as precedents."""
    with tempfile.TemporaryDirectory(prefix="shopdesk-labels-") as tmp:
        store = LabelStore(Path(tmp) / LABELS_FILE)
        labelled = dataclasses.replace(rule, precedents=Precedents(questions, known, store))
        plain = dataclasses.replace(rule, precedents=Precedents(questions, known))
        out = []
        for name in writer_sets(heldout):
            chosen = [(q, h) for q, h in zip(heldout, held_hits, strict=True) if q.writer == name]
            labels = [q.answerable for q, _ in chosen]
            before, after = [], []
            for q, h in chosen:
                before.append(not plain.decide(q.text, h, sentences, None, vocab).answerable)
                after.append(not labelled.decide(q.text, h, sentences, None, vocab).answerable)
                bar.update()
            out.append({"set": name, "labels_before": len(store.all()), "without_labels": _count(before, labels),
                        "with_labels": _count(after, labels)})
            for (q, h), declined in zip(chosen, after, strict=True):
                if declined == q.answerable:  # decided wrongly: a support agent labels it
                    store.add(FaqLabel(q.text, q.answerable, tuple(dict.fromkeys((x.doc_id, x.section) for x in h))))
        return out


def print_curve(report: dict[str, Any], out: Any = None) -> None:
    out = out or sys.stdout
    h = report["heldout_questions"]
    out.write(f"answerability rule learning curve ({report['embedder']}; fitted to decline "
              f"{report['target']:.0%} out of fold; held out: {h['unanswerable']} unanswerable + "
              f"{h['answerable']} answerable)\n\n")
    width = max([len("sets learned from")] + [len("+".join(p["sets"])) for p in report["points"]]) + 2
    out.write(f"{'sets learned from':<{width}}{'questions':>10}{'threshold':>10}  {'cross-validated':<17}"
              f"held out (declined, wrongly declined)\n")
    for p in report["points"]:
        cv, ho = p["cross_validation"], p["heldout"]
        validated = f"{cv['declined_unanswerable']:.1%} / {cv['false_declines']:.1%}"
        held = (f"{ho['declined']}/{ho['unanswerable']} ({ho['declined_unanswerable']:.1%}), "
                f"{ho['wrongly_declined']}/{ho['answerable']} ({ho['false_declines']:.1%})")
        out.write(f"{'+'.join(p['sets']):<{width}}{p['questions']:>10}{p['threshold']:>10.3f}  {validated:<17}{held}\n")


def print_corrections(report: dict[str, Any], out: Any = None) -> None:
    out = out or sys.stdout
    out.write("\nsupport agents labelling each held-out set's wrong decisions before the next set is asked "
              "(no refit):\n")
    out.write(f"{'set':<10}{'labels':>8}  {'without labels (declined, wrongly)':<38}with the labels\n")
    for r in report["corrections"]:
        a, b = r["without_labels"], r["with_labels"]
        cells = [f"{x['declined']}/{x['unanswerable']} ({x['declined_unanswerable']:.1%}), "
                 f"{x['wrongly_declined']}/{x['answerable']} ({x['false_declines']:.1%})" for x in (a, b)]
        out.write(f"{r['set']:<10}{r['labels_before']:>8}  {cells[0]:<38}{cells[1]}\n")


def main(argv: Sequence[str] | None = None) -> int:
    import json

    from app.config import load_settings
    from app.factory import Mode
    from evals.plots import learning_curve_png

    parser = argparse.ArgumentParser(prog="python -m evals.learning_curve", description=__doc__.split("\n")[0])
    parser.add_argument("--json", default="test-artifacts/learning_curve.json", help="where to write the report")
    parser.add_argument("--png", default=None, help="where to write the chart (default: beside --json)")
    parser.add_argument("--fake-models", action="store_true", help="hashing embedder instead of MiniLM")
    parser.add_argument("--target", type=float, default=TARGET,
                        help="share of unanswerable questions each fitted threshold declines out of fold")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not 0 < args.target < 1:
        parser.error("--target must be between 0 and 1")
    questions, heldout = load_questions(), load_questions(HELDOUT_DIR)
    if not heldout:
        parser.error(f"no held-out questions in {HELDOUT_DIR}")
    with tempfile.TemporaryDirectory(prefix="shopdesk-curve-") as tmp:
        settings = load_settings(data_dir=tmp, chroma_host="")
        report = curve(settings, Mode(fake_models=args.fake_models), questions, heldout, args.target,
                       progress=not args.no_progress)
    print_curve(report)
    print_corrections(report)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    png = Path(args.png) if args.png else path.with_suffix(".png")
    png.write_bytes(learning_curve_png(report["points"], report["target"]))
    print(f"\nreport: {path}\nchart: {png}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as evals.bench_retrieval: before torch loads
    sys.exit(main())
