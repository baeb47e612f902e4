"""`shopdesk` command line: thin over the library; every command is an importable function.

    shopdesk prepare            seed (if empty), index, train (if missing), convert the generator
    shopdesk serve              the app (API, Gradio demo) on 127.0.0.1:7860
    shopdesk seed | index | train | ask | eval
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from app.config import Settings, load_settings
from app.errors import ShopdeskError

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
    from app.factory import database
    from app.seed import seed_database

    settings = _settings(args)
    engine = database(settings)
    if args.if_empty and _has_orders(engine):
        print("seed: the shop database already has orders; leaving it as it is")
        return 0
    started = time.perf_counter()
    counts = seed_database(engine, seed=args.seed, customers=args.customers, orders=args.orders,
                           now=SystemClock().now(), replace=args.replace)
    print(f"seed: {counts} into {settings.resolved_database_url} in {time.perf_counter() - started:.1f}s")
    return 0


def _has_orders(engine) -> bool:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from app.db import Order

    with Session(engine) as s:
        return bool(s.scalar(select(func.count()).select_from(Order)))


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


def cmd_train(args: argparse.Namespace) -> int:
    from app.factory import embedder
    from intents.train import train

    settings = _settings(args)
    model_dir = settings.resolved_intent_model_dir
    if args.if_missing and (model_dir / "meta.json").is_file():
        print(f"train: intent model present in {model_dir}; leaving it as it is")
        return 0
    emb = embedder(settings)
    result = train(emb, model_dir, base_model=emb.name)
    acc = f", held-out route accuracy {result.heldout_route_accuracy:.3f}" if result.heldout_route_accuracy else ""
    print(f"train: {result.n_examples} examples, {len(result.labels)} intents -> {model_dir} "
          f"in {result.seconds:.1f}s{acc}")
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
    from evals.runner import run_paths

    settings = _settings(args)
    summary = run_paths([Path(p) for p in args.paths], settings, _mode(args), out=sys.stdout)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return 0 if not summary["failed"] else 1


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.api import create_app

    settings = _settings(args, host=args.host, port=args.port)
    started = time.perf_counter()
    app = create_app(settings, _mode(args))
    base = f"http://{settings.host}:{settings.port}"
    print(f"Shopdesk ready in {time.perf_counter() - started:.1f}s\n"
          f"  staff demo:  {base}/demo\n  chat API:    {base}/api/v1/chat\n  health:      {base}/healthz",
          flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    return 0


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

    p = add("serve", cmd_serve, "run the app: chat API and the Gradio staff demo")
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 7860)")

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

    add("index", cmd_index, "build or update the FAQ index from knowledge_base/docs")
    p = add("train", cmd_train, "train the intent classifier on intents/data", fake=False)
    p.add_argument("--if-missing", action="store_true", help="do nothing when a model exists")

    p = add("ask", cmd_ask, "one turn through the full pipeline")
    p.add_argument("message")
    p.add_argument("--session", required=True, help="session id (turns of one session share state)")
    p.add_argument("--json", action="store_true", help="print the whole Reply as JSON")

    p = add("eval", cmd_eval, "replay transcripts (design.md section 5) and check every turn")
    p.add_argument("paths", nargs="+", help="transcript files or folders")
    p.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except ShopdeskError as exc:
        print(f"shopdesk {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
