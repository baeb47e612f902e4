"""Importing any module loads no model and no heavy ML library (checked in a clean interpreter)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "sentence_transformers", "chromadb", "gradio", "sklearn")


def test_importing_every_module_loads_no_model():
    modules = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts)
        for pkg in ("app", "intents", "knowledge_base", "evals")
        for p in (REPO / pkg).rglob("*.py")
    )
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m.removesuffix('.__init__'))\n"
        f"print(json.dumps([h for h in {HEAVY!r} if h in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert len(modules) > 20
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
