"""The widget's files: what no change may bring in (HTML parsing of text, outside code, a build step).

The browser tests show the widget working; these fast checks keep the rules that make it safe to put on
any shop page from slipping in a later edit."""

import re
from pathlib import Path

import pytest

WIDGET = Path(__file__).resolve().parents[1] / "app" / "widget"
JS = (WIDGET / "widget.js").read_text(encoding="utf-8")
# comments may name the rules, so check the code without them
CODE = re.sub(r"^[ \t]*//[^\n]*$", "", re.sub(r"/\*.*?\*/", "", JS, flags=re.DOTALL), flags=re.MULTILINE)


@pytest.mark.parametrize("sink", ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                                  "new Function", "setTimeout(\"", "DOMParser", "createContextualFragment",
                                  "srcdoc"])
def test_widget_never_parses_text_as_html_or_code(sink):
    assert sink not in CODE


def test_links_are_made_only_for_http_urls():
    assert 'u.protocol === "http:" || u.protocol === "https:"' in CODE
    # the only hrefs set: a checked link (appendLink's safeUrl result) and the widget's own stylesheet
    assert sorted(re.findall(r"href:\s*(new URL\([^)]*\)\.href|\w+)", CODE)) == [
        "href", 'new URL("widget.css", scriptUrl).href']
    assert ".href =" not in CODE and 'setAttribute("href"' not in CODE
    assert "var href = safeUrl(url);" in CODE
    assert 'rel: "noopener noreferrer nofollow"' in CODE


@pytest.mark.parametrize("name", ["widget.js", "widget.css", "index.html"])
def test_no_cdn_no_framework_no_build_step(name):
    text = (WIDGET / name).read_text(encoding="utf-8")
    outside = [u for u in re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"')]*", text)
               if not re.match(r"(?:https?:)?//(?:www\.w3\.org|help\.example|fernandfield\.example)", u)]
    assert outside == []
    assert "import " not in text.split("*/", 1)[-1] and "require(" not in text


def test_package_ships_the_widget_files():
    pyproject = (WIDGET.parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^app = \[.*"widget/\*\.js".*"widget/\*\.css".*"widget/\*\.html".*\]', pyproject, re.MULTILINE)
