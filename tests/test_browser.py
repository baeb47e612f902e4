"""The staff demo in a real browser (Debian's chromium via Playwright), against a real server process
running the real bundled models on a seeded SQLite shop. Screenshots go to test-artifacts/."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(real_settings, real_models):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from app.db import make_engine, migrate
    from app.seed import seed_database

    engine = make_engine(real_settings.resolved_database_url)
    migrate(engine)
    seed_database(engine, customers=20, orders=60, replace=True)
    engine.dispose()
    port = _free_port()
    env = {**os.environ, "SHOPDESK_MODEL_CACHE_DIR_OVERRIDE": str(real_settings.model_cache_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "--data-dir", str(real_settings.data_dir), "serve",
                             "--port", str(port)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
        if proc.poll() is not None:
            pytest.fail(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
    else:
        proc.kill()
        pytest.fail("server did not start within 120 s")
    yield base
    proc.terminate()
    proc.wait(timeout=20)


def test_demo_conversation_in_a_real_browser(server):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{server}/", wait_until="load")  # / redirects to the demo
        box = page.locator("#msg textarea")
        box.wait_for(timeout=30_000)
        chat = page.locator("#chat")
        for message, expected in [("hi", "help"), ("where is my order SD-10002?", "email address"),
                                  ("ada.park@example.com", "in transit")]:
            box.fill(message)
            page.locator("#send").click()
            expect(chat).to_contain_text(expected, timeout=30_000)
            expect(page.locator("#summary")).to_contain_text("Timings", timeout=30_000)
        expect(chat).to_contain_text("1Z4F7E290387654321")  # the order's real tracking number from the database
        expect(page.locator("#summary")).to_contain_text("order_status")
        page.screenshot(path=str(ARTIFACTS / "demo-order-status.png"), full_page=True)
        browser.close()
