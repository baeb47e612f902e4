"""`shopdesk` command line: thin over the library; every command is an importable function.

    shopdesk prepare            seed (if empty), index, train (if missing), convert the generator
    shopdesk serve              the app (API, Gradio demo) on 127.0.0.1:7860
    shopdesk seed | index | train | ask | eval
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from app import logs
from app.config import Settings, load_settings
from app.errors import ShopdeskError
from intents.errors import IntentsError
from knowledge_base.errors import KnowledgeBaseError

log = logging.getLogger("shopdesk")


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    return load_settings(getattr(args, "config", None), data_dir=getattr(args, "data_dir", None), **extra)


def _mode(args: argparse.Namespace):
    from app.factory import Mode

    return Mode(fake_models=bool(getattr(args, "fake_models", False)))


def _bar(desc: str, total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", leave=True)


# ---- commands ----------------------------------------------------------------------------------
def cmd_seed(args: argparse.Namespace) -> int:
    from app.clock import SystemClock
    from app.db import display_url
    from app.factory import database
    from app.seed import seed_database

    settings = _settings(args)
    engine = database(settings)
    if args.if_empty and _has_orders(engine):
        print("seed: the shop database already has orders; leaving it as it is")
        return 0
    started = time.perf_counter()
    try:
        counts = seed_database(engine, seed=args.seed, customers=args.customers, orders=args.orders,
                               now=SystemClock().now(), replace=args.replace)
    except ValueError as exc:  # sizes out of range, or a shop already there without --replace
        print(f"shopdesk seed: {exc}", file=sys.stderr)
        return 2
    print(f"seed: {counts} into {display_url(settings.resolved_database_url)} in {time.perf_counter() - started:.1f}s")
    return 0


def _has_orders(engine) -> bool:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from app.db import Order

    with Session(engine) as s:
        return bool(s.scalar(select(func.count()).select_from(Order)))


def cmd_import(args: argparse.Namespace) -> int:
    """Customers, products and orders from JSON, YAML or CSV (docs/import.md); all rows or none."""
    from app.db import display_url
    from app.factory import database
    from app.importer import import_files

    settings = _settings(args)
    paths = [Path(p) for p in args.files]
    engine = database(settings)
    started = time.perf_counter()
    from tqdm import tqdm

    bars: list[tqdm] = []  # shown once the checks pass and rows are written

    def progress(n: int) -> None:
        if not bars:
            bars.append(tqdm(desc="importing orders", unit="order", leave=True))
        bars[0].update(n)

    try:
        counts = import_files(engine, paths, settings.order_prefix, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    where = display_url(settings.resolved_database_url)
    print(f"import: {counts} into {where} in {time.perf_counter() - started:.1f}s")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """A signed customer token, as the shop's site would give the widget (for demos and tests)."""
    from datetime import timedelta

    from app.clock import SystemClock
    from app.tokens import load_secret, sign

    settings = _settings(args)
    secret = load_secret(settings.customer_token_secret, settings.data_dir)
    print(sign(args.customer_id, SystemClock().now() + timedelta(minutes=args.minutes), secret))
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from app.factory import build_index, embedder

    settings = _settings(args)
    emb = embedder(settings, _mode(args))
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or _bar("embedding FAQ chunks", total)
        bar.update(done - bar.n)

    stats = build_index(settings, emb, progress=progress)
    if bar:
        bar.close()
    where = settings.chroma_host or settings.resolved_chroma_path
    print(f"index: {stats.added} added, {stats.deleted} deleted, {stats.unchanged} unchanged ({where})")
    return 0


def cmd_import_faq(args: argparse.Namespace) -> int:
    """A shop's question/answer pairs (CSV or JSON) into the data dir, then the index; all rows or none."""
    from app.factory import imported_faq_dir
    from knowledge_base.faq_import import read_pairs, write_imported
    from knowledge_base.loader import DOCS_DIR, load_articles

    settings = _settings(args)
    path = Path(args.file)
    pairs = read_pairs(path, taken_ids={a.id: a.path for a in load_articles(DOCS_DIR)})
    result = write_imported(pairs, imported_faq_dir(settings), replace=args.replace, source=path.name)
    print(f"import-faq: {len(pairs)} pairs from {path} -> {result.directory} ({result.added} new, "
          f"{result.updated} updated, {result.removed} removed; {result.total} imported pairs in all)")
    if args.no_index:
        print("import-faq: run `shopdesk index` to make them searchable")
        return 0
    return cmd_index(args)


def cmd_search(args: argparse.Namespace) -> int:
    """JSONL {"text": ...} per line in (a file or stdin), JSONL ranked articles out, in batches."""
    from tqdm import tqdm

    from app.errors import IndexNotBuiltError
    from app.factory import embedder, faq_index, faq_retriever
    from app.jsonl import read_text_file
    from knowledge_base.answerable import AnswerRule, SentenceSimilarity
    from knowledge_base.batch_search import search_records

    settings = _settings(args)
    records = read_text_file(args.file, "searched", "do you ship to canada?")
    emb = embedder(settings, _mode(args))
    index = faq_index(settings, emb)
    if not index.exists():
        raise IndexNotBuiltError(f"the FAQ index {index.collection_name} is empty: run `shopdesk index`")
    retriever = faq_retriever(settings, emb, index)
    with tqdm(total=len(records), desc="searching", unit="query", file=sys.stderr, disable=None) as bar:
        for out in search_records(records, retriever, args.k, settings.retrieval_min_score,
                                  settings.retrieval_top_k, batch=args.batch, progress=bar.update,
                                  rule=AnswerRule.from_settings(settings), sentences=SentenceSimilarity.shared(emb)):
            sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from app.factory import embedder
    from intents.train import model_is_current, train

    settings = _settings(args)
    model_dir = settings.resolved_intent_model_dir
    if args.if_missing and model_is_current(model_dir):
        print(f"train: intent model in {model_dir} is up to date with intents/data; leaving it as it is")
        return 0
    emb = embedder(settings)
    result = train(emb, model_dir, base_model=emb.name, show_progress=True)
    acc = f", held-out route accuracy {result.heldout_route_accuracy:.3f}" if result.heldout_route_accuracy else ""
    print(f"train: {result.n_examples} examples, {len(result.labels)} intents -> {model_dir} "
          f"in {result.seconds:.1f}s{acc}; calibrated gates: confidence >= {result.thresholds['confidence_min']}, "
          f"margin >= {result.thresholds['margin_min']} (settings intent_confidence_min, intent_margin_min)")
    if getattr(args, "report", None):  # `prepare` runs this command without the option
        from intents.classifier import EmbeddingClassifier
        from intents.dataset import load_training_data
        from intents.report import write_report

        model = EmbeddingClassifier.load(model_dir, emb)
        texts = [e.text for e in load_training_data()][::7]  # a spread of lengths for the latency sample
        write_report(Path(args.report), model.meta, model, texts)
        print(f"train: report in {args.report} (report.md, report.json, confusion_*.png)")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    """JSONL {"text": ...} per line in (a file or stdin), JSONL predictions out in the same order, batched."""
    from tqdm import tqdm

    from app.factory import classifier, embedder
    from app.jsonl import read_text_file
    from intents.batch import classify_records
    from intents.entities import EntityExtractor

    settings = _settings(args)
    texts = [r["text"] for r in read_text_file(args.file, "classified", "where is my order?")]
    clf = classifier(settings, embedder(settings, _mode(args)), _mode(args))
    extractor = EntityExtractor(settings.order_prefix)
    with tqdm(total=len(texts), desc="classifying", unit="msg", file=sys.stderr, disable=None) as bar:
        for out in classify_records(texts, clf, extractor, batch=args.batch, progress=bar.update):
            sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Everything `make run` needs before serving, each step skipped when already done."""
    from app.generator import convert_bundled

    for step in (cmd_seed, cmd_index, cmd_train):
        step(args)
    settings = _settings(args)
    if settings.generator == "local" and settings.generator_model == "bundled" and not args.fake_models:
        started = time.perf_counter()
        path = convert_bundled(settings.model_cache_dir)
        print(f"generator: bundled SmolLM2 ready in {path} ({time.perf_counter() - started:.1f}s)")
    if settings.generator == "local" and settings.native_decode and not args.fake_models:
        from app.native import NativeUnavailable, build

        try:
            print(f"generator: native decoding step ready in {build(settings.model_cache_dir / 'native')}")
        except NativeUnavailable as exc:  # the generator decodes with PyTorch's step then (slower)
            print(f"generator: no native decoding step ({exc}); PyTorch's step is used")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from app.factory import build_assistant
    from app.schema import Message

    settings = _settings(args)
    assistant = build_assistant(settings, mode=_mode(args))
    reply = assistant.respond(Message(args.session, args.message, channel="cli"))
    if args.json:
        print(json.dumps(reply.to_dict(), indent=2, default=str))
    else:
        print(reply.text)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.paths[0] == "record":
        return cmd_eval_record(args)
    from evals.command import run_eval

    tags = tuple(t for chunk in args.tags or () for t in chunk.split(",") if t)
    outcome = run_eval([Path(p) for p in args.paths], _settings(args), _mode(args),
                       report_dir=Path(args.report) if args.report else None,
                       baseline=Path(args.baseline) if args.baseline else None, tags=tags, jobs=args.jobs,
                       json_path=Path(args.json) if args.json else None, tolerance=args.tolerance,
                       docs_dir=Path(args.docs) if args.docs else None, out=sys.stdout, progress=True)
    return outcome.exit_code


def cmd_eval_record(args: argparse.Namespace) -> int:
    """`shopdesk eval record SESSION_ID [--out FILE]`: a stored conversation as a transcript."""
    from app.factory import database
    from evals.record import record_session

    if len(args.paths) != 2:
        print("usage: shopdesk eval record SESSION_ID [--out FILE]", file=sys.stderr)
        return 2
    text = record_session(database(_settings(args)), args.paths[1])
    if not args.out:
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    if out.exists():
        print(f"shopdesk eval record: {out} exists; choose another --out or delete it", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"recorded session {args.paths[1]} -> {out}; edit it, then run `shopdesk eval {out}`")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Generation speed and guard acceptance in one run (evals/bench_generation.py); prints and writes JSON."""
    from evals.bench_generation import print_report, run_bench, write_json

    report = run_bench(_settings(args), quick=args.quick)
    print_report(report, sys.stdout)
    if args.json:
        write_json(report, Path(args.json))
        print(f"report: {args.json}")
    return 0


def cmd_model_server(args: argparse.Namespace) -> int:
    from app.factory import generator
    from app.generator import LocalGenerator
    from app.model_server import ModelServer

    settings = _settings(args, generator="local")
    gen = generator(settings)
    assert isinstance(gen, LocalGenerator)
    server = ModelServer(gen, host=args.host, port=args.port, queue_size=args.queue)
    print(f"model server: {gen.name} on http://{args.host}:{server.port}/v1 (loading...)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.api import create_app

    settings = _settings(args, host=args.host, port=args.port)
    workers = getattr(args, "workers", 1) or 1
    if workers < 1:
        print("shopdesk serve: --workers must be at least 1", file=sys.stderr)
        return 2
    started = time.perf_counter()
    app = create_app(settings, _mode(args)) if workers == 1 else None
    base = f"http://{settings.host}:{settings.port}"
    staff = "login: staff / $SHOPDESK_STAFF_TOKEN" if settings.staff_token else "open: set SHOPDESK_STAFF_TOKEN"
    head = (f"Shopdesk ready in {time.perf_counter() - started:.1f}s" if app is not None else
            f"Shopdesk starting {workers} worker processes (each loads the models; ready when {base}/readyz answers)")
    print(f"{head}\n"
          f"  shop page with the chat widget: {base}/\n  staff demo:  {base}/demo/ ({staff})\n"
          f"  chat API:    {base}/api/v1/chat (docs: {base}/docs)\n"
          f"  health:      {base}/healthz, {base}/readyz, metrics: {base}/metrics", flush=True)
    if not settings.staff_token and settings.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s without SHOPDESK_STAFF_TOKEN: the staff demo is open to anyone who can reach it",
                    settings.host)
    # --proxy-headers: behind a reverse proxy, rate limits and lockouts see the shopper's address
    # log_config=None: uvicorn's loggers go through the root handlers, which mask personal data (app/logs.py)
    if app is None:  # N processes, each builds its own app (app.api.worker_app); they share the database
        import os

        from app.api import WORKER_OPTIONS_ENV, worker_options

        overrides = {"data_dir": str(settings.data_dir), "host": settings.host, "port": settings.port}
        os.environ[WORKER_OPTIONS_ENV] = worker_options(getattr(args, "config", None), overrides,
                                                        bool(getattr(args, "fake_models", False)))
        uvicorn.run("app.api:worker_app", factory=True, workers=workers, host=settings.host, port=settings.port,
                    log_level="warning", proxy_headers=True, log_config=None)
        return 0
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", proxy_headers=True,
                log_config=None)
    return 0


def cmd_loadtest(args: argparse.Namespace) -> int:
    """N concurrent sessions x M turns against a real server process; exit 1 unless the checks pass."""
    from app.loadtest import LoadConfig, run_loadtest, summary

    config = LoadConfig(sessions=args.sessions, turns=args.turns, timeout_s=args.timeout,
                        request_timeout_s=args.request_timeout, workers=args.workers, url=args.url or "",
                        database_url=args.database_url or "", real_models=args.real_models,
                        work_dir=args.work_dir or "", keep=args.keep, keepalive=args.keepalive)
    report = run_loadtest(_settings(args), config, progress=True)
    print(summary(report))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        print(f"loadtest: report in {out}")
    return 0 if report["passed"] else 1


# ---- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopdesk", description="Shopdesk customer-service assistant")
    parser.add_argument("--config", help="TOML settings file (default: ./shopdesk.toml if present)")
    parser.add_argument("--data-dir", help="where the database, index and models live (SHOPDESK_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn, help_text: str, fake: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(fn=fn)
        if fake:
            p.add_argument("--fake-models", action="store_true",
                           help="use the deterministic fakes (keyword classifier, hashing embedder, templates)")
        return p

    p = add("bench", cmd_bench, "measure reply generation: bandwidth, load, prefill/decode per dtype, turn latency, "
            "first token, guard acceptance per route, concurrent sessions", fake=False)
    p.add_argument("--json", metavar="FILE", help="write the report as JSON (keys: evals/bench_generation.py)")
    p.add_argument("--quick", action="store_true", help="fewer setups, repetitions and conversations (a minute or two)")

    p = add("model-server", cmd_model_server, "serve the local generator over an OpenAI-compatible API",
            fake=False)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--queue", type=int, default=16, help="requests waiting at most (more get 503)")

    p = add("serve", cmd_serve, "run the app: chat API and the Gradio staff demo")
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 7860)")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the database (default 1); "
                   "use PostgreSQL (SHOPDESK_DATABASE_URL) for more than one")

    for name, fn, text in (("seed", cmd_seed, "create the deterministic demo shop"),
                           ("prepare", cmd_prepare, "seed if empty, index, train if missing, convert the model")):
        p = add(name, fn, text, fake=name == "prepare")
        p.add_argument("--seed", type=int, default=7, help="random seed of the demo shop")
        p.add_argument("--customers", type=int, default=120)
        p.add_argument("--orders", type=int, default=400)
        p.add_argument("--replace", action="store_true", help="delete the shop's rows first")
        p.add_argument("--if-empty", action="store_true", default=name == "prepare",
                       help="do nothing when the database already has orders")
        if name == "prepare":
            p.set_defaults(if_missing=True)

    p = add("import", cmd_import, "load customers, products and orders from JSON, YAML or CSV (docs/import.md)",
            fake=False)
    p.add_argument("files", nargs="+", help="files; CSV: customers.csv, products.csv, orders.csv, order_items.csv, "
                   "tracking_events.csv")
    p = add("token", cmd_token, "print a signed customer token for the widget (SHOPDESK_CUSTOMER_TOKEN_SECRET)",
            fake=False)
    p.add_argument("customer_id")
    p.add_argument("--minutes", type=int, default=60, help="minutes until it expires (default 60)")

    add("index", cmd_index, "build or update the FAQ index: knowledge_base/docs and imported pairs (import-faq)")
    p = add("import-faq", cmd_import_faq, "load a shop's question/answer pairs (CSV or JSON) into the FAQ")
    p.add_argument("file", help="CSV with columns question,answer[,id,url,category], or JSON: a list of objects "
                   "with those keys")
    p.add_argument("--replace", action="store_true", help="drop the pairs imported before")
    p.add_argument("--no-index", action="store_true", help="only store the pairs; `shopdesk index` indexes them")
    p = add("search", cmd_search, 'search the FAQ for each JSONL line {"text": ...}; JSONL results to stdout')
    p.add_argument("file", nargs="?", default="-", help="JSONL file, or - (default) for stdin")
    p.add_argument("-k", type=int, default=5, help="articles per question (default 5)")
    p.add_argument("--batch", type=int, default=32, help="questions embedded per batch (default 32)")
    p = add("train", cmd_train, "train the intent classifier on intents/data", fake=False)
    p.add_argument("--if-missing", action="store_true",
                   help="do nothing when a model trained on the current intents/data exists")
    p.add_argument("--report", metavar="DIR", help="also write report.md/.json and confusion-matrix PNGs to DIR")
    p = add("classify", cmd_classify, 'classify each JSONL line {"text": ...}; JSONL predictions to stdout')
    p.add_argument("file", nargs="?", default="-", help="JSONL file, or - (default) for stdin")
    p.add_argument("--batch", type=int, default=64, help="messages per classifier call (default 64)")

    p = add("loadtest", cmd_loadtest, "drive N concurrent sessions x M turns through a real server process and "
            "check the database afterwards (fake models unless --real-models)", fake=False)
    p.add_argument("--sessions", type=int, default=50, help="concurrent sessions (default 50)")
    p.add_argument("--turns", type=int, default=20, help="turns per session (default 20)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds after which no new turn starts (default 600; turns in flight get --request-timeout)")
    p.add_argument("--request-timeout", type=float, default=60.0, help="seconds per request (default 60)")
    p.add_argument("--workers", type=int, default=1, help="worker processes of the started server (default 1); "
                   "with more than one use PostgreSQL (--database-url)")
    p.add_argument("--url", help="drive this running server instead of starting one (needs --database-url; its "
                   "rate limit stays as configured)")
    p.add_argument("--database-url", help="database of the run (default: a fresh SQLite file in the work dir); "
                   "load-test customers LT8xxxxx with orders SD-8xxxxx are added to it")
    p.add_argument("--real-models", action="store_true",
                   help="the prepared models of the data dir (`shopdesk prepare`) instead of the fakes")
    p.add_argument("--work-dir", help="keep the database, index and server log here (default: a temporary dir)")
    p.add_argument("--keep", action="store_true", help="keep the temporary work dir")
    p.add_argument("--keepalive", action="store_true", help="reuse connections (default: a new connection per "
                   "turn, so a session's turns spread over the workers as behind a load balancer)")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON")

    p = add("ask", cmd_ask, "one turn through the full pipeline")
    p.add_argument("message")
    p.add_argument("--session", required=True, help="session id (turns of one session share state)")
    p.add_argument("--json", action="store_true", help="print the whole Reply as JSON")

    p = add("eval", cmd_eval, "replay transcripts (design.md section 5) and check every turn; "
            "`shopdesk eval record SESSION_ID [--out FILE]` turns a stored conversation into a transcript")
    p.add_argument("paths", nargs="+", help="transcript files or folders (or: record SESSION_ID)")
    p.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    p.add_argument("--report", metavar="DIR", help="write DIR/report.json, DIR/report.html and DIR/failed.yaml")
    p.add_argument("--baseline", metavar="FILE", help="a previous JSON report: exit 1 on a newly failing "
                   "transcript or a metric drop beyond the tolerance (e.g. evals/baseline.json)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest allowed metric drop for --baseline (default: setting eval_gate_tolerance, 0.02)")
    p.add_argument("--tags", nargs="+", metavar="TAG", help="only transcripts with any of these tags")
    p.add_argument("--jobs", type=int, default=1, help="worker processes, each loading the models once (default 1)")
    p.add_argument("--docs", metavar="DIR", help="index these help-centre articles instead of knowledge_base/docs")
    p.add_argument("--out", metavar="FILE", help="with `record`: write the transcript here (default: print it)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logs.configure(logging.WARNING)  # every handler masks personal data (app/logs.py)
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except (ShopdeskError, KnowledgeBaseError, IntentsError) as exc:
        print(f"shopdesk {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
