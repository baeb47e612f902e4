"""The shop page's chat widget and the staff demo in a real browser (Debian's chromium via Playwright),
against a real server process with the real bundled models on a seeded SQLite shop.

The FAQ index of this server also holds an article with script and image payloads in its title, body
and url, written to a temp dir here (never into knowledge_base/docs): it must show as inert text.
Screenshots go to test-artifacts/.
"""

import json
import os
import re
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
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PLANTED = """---
id: gift-wrapping-test
title: Gift wrapping <img src=x onerror="window.__xss_title=1;alert('title')">
category: orders
url: javascript:alert('url')
---

## Gift wrapping

Gift wrapping costs $5 per order <script>window.__xss_body=1;alert('body')</script> and every wrapped gift gets
a handwritten card <img src=x onerror="window.__xss_img=1;alert('img')">. Choose gift wrapping at checkout.
"""
TYPED = ("""<img src=x onerror="window.__xss_user=1;alert('user')"><script>window.__xss_user2=1</script> """
         "[x](javascript:alert(1))")
SHADOW = "document.querySelector('#shopdesk-widget').shadowRoot"
TIMEOUT = 60_000
UNANSWERABLE = "do you offer kayak rentals?"  # no article covers it (the real retriever scores ~0.2 < 0.35)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(real_settings, real_models, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from app.config import load_settings
    from app.db import make_engine, migrate
    from app.factory import build_index
    from app.seed import seed_database

    docs = tmp_path_factory.mktemp("planted-docs")
    (docs / "gift-wrapping-test.md").write_text(PLANTED, encoding="utf-8")
    data = tmp_path_factory.mktemp("browser-data")
    env = {**os.environ, "SHOPDESK_MODEL_CACHE_DIR_OVERRIDE": str(real_settings.model_cache_dir),
           "SHOPDESK_INTENT_MODEL_DIR": str(real_settings.resolved_intent_model_dir),
           "SHOPDESK_RATE_LIMIT_PER_MINUTE": "600", "SHOPDESK_GENERATOR": "local"}
    env.pop("SHOPDESK_STAFF_TOKEN", None)
    settings = load_settings(data_dir=str(data), model_cache_dir_override=str(real_settings.model_cache_dir),
                             intent_model_dir=str(real_settings.resolved_intent_model_dir))
    build_index(settings, real_models.embedder, extra_dirs=(docs,))
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    seed_database(engine, customers=20, orders=60, replace=True)
    engine.dispose()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "--data-dir", str(data), "serve", "--port", str(port)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
        if proc.poll() is not None:
            pytest.fail(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
    else:
        proc.kill()
        pytest.fail("server did not start within 180 s")
    ARTIFACTS.mkdir(exist_ok=True)
    yield base
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.dialogs = []  # any alert() would mean a payload ran
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    context.close()


def ask(page, text: str, expect_text: str):
    """Type a message, send it with Enter, wait for the reply; returns the stream's raw SSE body."""
    from playwright.sync_api import expect

    bots = page.locator(".sd-bot")
    before = bots.count()
    page.locator("#sd-input").fill(text)
    with page.expect_response("**/api/v1/chat/stream", timeout=TIMEOUT) as resp:
        page.locator("#sd-input").press("Enter")
    expect(bots).to_have_count(before + 1, timeout=TIMEOUT)
    expect(bots.last).to_contain_text(expect_text, timeout=TIMEOUT)
    expect(page.locator(".sd-send")).to_be_enabled(timeout=TIMEOUT)
    return resp.value.text()


def assert_streamed(raw: str, reply_text_in_page: str) -> None:
    events = [(f.split("\n")[0][7:], json.loads(f.split("\n")[1][6:])) for f in raw.strip().split("\n\n")]
    tokens = [d["text"] for name, d in events if name == "token"]
    assert events[0][0] == "session" and events[-1][0] == "reply" and len(tokens) > 3
    assert "".join(tokens) == events[-1][1]["text"]
    assert events[-1][1]["text"].split()[0] in reply_text_in_page


# ---- the widget on the shop page ------------------------------------------------------------------
def test_widget_order_and_faq_questions_stream_and_show_the_order_card(server, page):
    from playwright.sync_api import expect

    page.goto(f"{server}/")
    bubble = page.locator(".sd-bubble")
    expect(bubble).to_have_attribute("aria-expanded", "false")
    bubble.click()
    expect(page.locator("#sd-panel")).to_be_visible()
    assert page.evaluate(f"{SHADOW}.activeElement.id") == "sd-input"  # focus moves into the chat
    expect(page.locator(".sd-human")).to_be_visible()

    raw = ask(page, "where is my order SD-10002?", "email")
    assert_streamed(raw, page.locator(".sd-bot").last.inner_text())
    ask(page, "ada.park@example.com", "SD-10002")
    card = page.locator(".sd-card")
    expect(card).to_be_visible()
    expect(card).to_contain_text("Order SD-10002")
    expect(card.locator(".sd-badge")).to_have_text("in transit")
    expect(card).to_contain_text("1Z4F7E290387654321")  # the order's tracking number from the database
    assert card.locator(".sd-timeline li").count() >= 3
    assert card.locator(".sd-card-items li").count() >= 1  # the order's items, one per line
    page.screenshot(path=str(ARTIFACTS / "widget-order-card.png"))

    raw = ask(page, "how long does shipping take to Canada?", "Source")
    assert_streamed(raw, page.locator(".sd-bot").last.inner_text())
    links = page.locator(".sd-bot").last.locator("a")
    assert links.count() >= 1 and links.first.get_attribute("href").startswith("https://fernandfield.example/")
    assert links.first.get_attribute("rel") == "noopener noreferrer nofollow"
    page.locator(".sd-bot").last.get_by_role("button", name="Helpful", exact=True).click()
    expect(page.locator(".sd-bot").last.get_by_role("button", name="Helpful", exact=True)).to_have_attribute(
        "aria-pressed", "true")
    page.screenshot(path=str(ARTIFACTS / "widget-faq.png"))

    # the conversation survives a page load (localStorage + the transcript API), rating included
    page.reload()
    expect(page.locator(".sd-bot")).to_have_count(3, timeout=TIMEOUT)
    expect(page.locator(".sd-card")).to_contain_text("SD-10002")
    expect(page.locator(".sd-bot").last.get_by_role("button", name="Helpful", exact=True)).to_have_attribute(
        "aria-pressed", "true")
    state = json.loads(page.evaluate(f"localStorage.getItem('shopdesk:{server}')"))
    turns = httpx.get(f"{server}/api/v1/sessions/{state['sessionId']}",
                      headers={"X-Session-Token": state["sessionToken"]}).json()["turns"]
    assert [t["rating"] for t in turns] == [None, None, 1]
    assert page.dialogs == [] and page.errors == []


def test_talk_to_a_human_and_quick_reply_chips(server, page):
    from playwright.sync_api import expect

    page.goto(f"{server}/")
    page.locator(".sd-bubble").click()
    page.locator(".sd-human").click()
    expect(page.locator(".sd-bot")).to_have_count(1, timeout=TIMEOUT)
    chips = page.locator(".sd-chip")
    expect(chips.first).to_be_visible(timeout=TIMEOUT)
    assert "Yes, connect me" in chips.all_inner_texts()
    page.screenshot(path=str(ARTIFACTS / "widget-handoff-chips.png"))
    with page.expect_response("**/api/v1/chat/stream", timeout=TIMEOUT) as resp:
        chips.filter(has_text="Yes, connect me").click()  # a chip sends its text as the shopper's message
    expect(page.locator(".sd-user").last).to_have_text("You said: Yes, connect me")
    expect(page.locator(".sd-bot")).to_have_count(2, timeout=TIMEOUT)
    expect(page.locator(".sd-send")).to_be_enabled(timeout=TIMEOUT)
    reply = json.loads(resp.value.text().strip().split("\n\n")[-1].split("\n")[1][6:])
    assert chips.all_inner_texts() == reply["choices"]  # the old chips are replaced by the new reply's


def test_xss_typed_by_the_shopper_and_planted_in_an_article_stays_text(server, page):
    from playwright.sync_api import expect

    page.goto(f"{server}/")
    page.locator(".sd-bubble").click()
    ask(page, TYPED, "")
    expect(page.locator(".sd-user").first.locator(".sd-text")).to_have_text(TYPED)  # shown literally
    ask(page, "do you offer gift wrapping?", "Gift wrapping")
    reply = page.locator(".sd-bot").last
    expect(reply).to_contain_text("<script>")  # the planted payload arrived, as characters
    expect(reply).to_contain_text('onerror="window.__xss_title=1')
    page.screenshot(path=str(ARTIFACTS / "widget-xss-inert.png"))
    injected = page.evaluate(f"""() => {{
        const root = {SHADOW};
        return {{
          elements: root.querySelectorAll('.sd-log img, .sd-log script, .sd-log iframe, .sd-log [onerror]').length,
          pageElements: document.querySelectorAll('img[src="x"], script:not([src])').length,
          badLinks: [...root.querySelectorAll('.sd-log a')].filter(a => !/^https?:/.test(a.href)).length,
          flags: ['__xss_title', '__xss_body', '__xss_img', '__xss_user', '__xss_user2'].filter(k => k in window),
        }}; }}""")
    assert injected == {"elements": 0, "pageElements": 0, "badLinks": 0, "flags": []}
    page.wait_for_timeout(500)  # an onerror of a (wrongly) parsed <img src=x> fires after the failed load
    assert page.dialogs == [] and page.evaluate("'__xss_img' in window") is False


def test_widget_on_a_phone_sized_screen_by_keyboard(server, browser):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{server}/")
    bubble = page.locator(".sd-bubble")
    bubble.focus()
    page.keyboard.press("Enter")  # a button: Enter opens it
    panel = page.locator("#sd-panel")
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert box["x"] >= 0 and box["width"] <= 375 and box["height"] <= 667
    for part in (".sd-human", "#sd-input", ".sd-send", ".sd-close"):
        b = page.locator(part).bounding_box()
        assert b and b["x"] >= 0 and b["x"] + b["width"] <= 375 and b["y"] + b["height"] <= 667, part
    assert page.evaluate(f"{SHADOW}.activeElement.id") == "sd-input"
    assert page.locator(".sd-log").get_attribute("aria-live") == "polite"
    assert page.locator(".sd-log").get_attribute("role") == "log"
    assert page.locator("label[for=sd-input]").inner_text() == "Your message"
    page.keyboard.type("hi")
    page.keyboard.press("Enter")
    expect(page.locator(".sd-bot")).to_have_count(1, timeout=TIMEOUT)
    expect(page.locator(".sd-bot .sd-text p").first).to_be_visible(timeout=TIMEOUT)
    expect(page.locator(".sd-send")).to_be_enabled(timeout=TIMEOUT)
    page.screenshot(path=str(ARTIFACTS / "widget-phone.png"))
    page.keyboard.press("Escape")  # closes and gives focus back to the bubble
    expect(panel).to_be_hidden()
    assert page.evaluate(f"{SHADOW}.activeElement.className") == "sd-bubble"
    assert bubble.get_attribute("aria-expanded") == "false"
    context.close()


# ---- the staff demo ------------------------------------------------------------------------------
def test_demo_conversation_in_a_real_browser(server, page):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1400, "height": 1100})
    page.goto(f"{server}/")
    page.locator("#staff-demo-link").click()  # the shop page links the staff demo
    box = page.locator("#msg textarea")
    box.wait_for(timeout=30_000)
    chat = page.locator("#chat")
    # each message is sent as soon as the last one has left the box: one sent while a reply still streams
    # runs when that reply is done (trigger_mode "always_last"), it is not dropped
    turns = [("hi", "help"), ("where is my order SD-10002?", "email address"), ("ada.park@example.com", "in transit")]
    for message, _ in turns:
        box.fill(message)
        page.locator("#send").click()
        expect(box).to_have_value("", timeout=TIMEOUT)
    for _, expected in turns:
        expect(chat).to_contain_text(expected, timeout=TIMEOUT)
    expect(page.locator("#summary")).to_contain_text("Timings", timeout=TIMEOUT)
    expect(chat).to_contain_text("1Z4F7E290387654321")  # the order's real tracking number from the database
    expect(page.locator("#summary")).to_contain_text("order_status")
    # thumbs up on the last reply is stored with its turn
    page.locator("#chat").get_by_role("button", name="Like").last.click()
    expect(page.locator("#feedback-note")).to_contain_text("Saved", timeout=TIMEOUT)
    page.screenshot(path=str(ARTIFACTS / "demo-order-status.png"), full_page=True)

    box.fill(UNANSWERABLE)  # the FAQ has nothing on it: it shows up in the stats tab
    page.locator("#send").click()
    expect(page.locator("#panel")).to_contain_text("faq_unknown", timeout=TIMEOUT)
    page.locator("#label-unanswerable").click()  # staff confirm the gap: kept as a labelled question
    expect(page.locator("#label-note")).to_contain_text("as not answered by the help centre", timeout=TIMEOUT)
    expect(page.locator("#label-note")).to_contain_text(UNANSWERABLE)

    # act as a customer: a signed token verifies the shopper without the email
    page.locator("#act-as input").click()
    page.get_by_role("option", name="Ada Park", exact=False).first.click()
    expect(page.locator("#act-as-note")).to_contain_text("Signed in as", timeout=TIMEOUT)
    box.fill("where is my order SD-10004?")
    page.locator("#send").click()
    expect(chat).to_contain_text("SD-10004", timeout=TIMEOUT)
    expect(page.locator("#panel")).to_contain_text(re.compile(r'"verified"\s*:\s*true'), timeout=TIMEOUT)

    page.get_by_role("tab", name="Stats").click()
    expect(page.locator("#stats")).to_contain_text("Conversations", timeout=TIMEOUT)
    expect(page.locator("#stats")).to_contain_text(re.compile(r"Thumbs up\s+100%"), timeout=TIMEOUT)
    expect(page.locator("#unanswered")).to_contain_text(UNANSWERABLE, timeout=TIMEOUT)
    page.screenshot(path=str(ARTIFACTS / "demo-stats.png"), full_page=True)
    page.get_by_role("tab", name="Handoff tickets").click()
    expect(page.locator("#tickets")).to_be_visible()
    assert page.dialogs == []
