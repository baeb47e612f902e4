"""`shopdesk import-faq`: a shop's question/answer pairs become articles; bad rows by line; all or nothing."""

from __future__ import annotations

import json

import pytest

import knowledge_base.faq_import as faq_import
from app.cli import main
from app.factory import Models, build_index, faq_index, imported_faq_dir
from app.generator import TemplateGenerator
from app.schema import Message
from intents.classifier import KeywordClassifier
from knowledge_base.embedder import HashingEmbedder
from knowledge_base.errors import FaqImportError
from knowledge_base.faq_import import content_id, read_pairs, write_imported
from knowledge_base.loader import load_articles

CSV = """question,answer,id,url,category
Do you ship to Mars?,"No, we only ship to addresses on Earth.",mars,https://shop.example/mars,shipping
"Can I bring my dog, Rex, to the Reno counter?","Yes, dogs on a leash are welcome.",,,
"""


def _files(directory):
    return {p.name: p.read_text() for p in sorted(directory.glob("*.md"))} if directory.is_dir() else {}


def test_csv_pairs_keep_their_id_else_get_one_from_the_question(tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text(CSV)
    pairs = read_pairs(path)
    assert [p.id for p in pairs] == ["mars", content_id("Can I bring my dog, Rex, to the Reno counter?")]
    assert pairs[1].id.startswith("faq-can-i-bring-my-dog-rex-") and pairs[1].category == "faq"
    assert content_id("can i bring my  dog, rex, to the reno counter?") == pairs[1].id  # case and spaces
    result = write_imported(pairs, tmp_path / "faq_imported", source="faq.csv")
    assert (result.added, result.updated, result.total) == (2, 0, 2)
    articles = {a.id: a for a in load_articles(tmp_path / "faq_imported")}
    assert articles["mars"].title == "Do you ship to Mars?" and articles["mars"].url == "https://shop.example/mars"
    assert articles["mars"].body == "No, we only ship to addresses on Earth."
    assert articles["mars"].category == "shipping"
    assert articles[pairs[1].id].url == ""


def test_json_list_of_objects(tmp_path):
    path = tmp_path / "faq.json"
    path.write_text(json.dumps([{"question": "Do you ship to Mars?", "answer": "No.", "id": 7},
                                {"question": "Gift wrap?", "answer": "Not yet.", "url": None}], indent=2))
    assert [(p.id, p.answer) for p in read_pairs(path)] == [("7", "No."), (content_id("Gift wrap?"), "Not yet.")]


def test_bad_csv_rows_are_reported_by_line_and_nothing_is_written(tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text('question,answer,id,url\n'
                    '"Does the answer span lines?","Yes,\nit does.",ok,\n'  # lines 2-3: fine
                    'Empty answer?,,,\n'  # line 4
                    ',An answer without question,,\n'  # line 5
                    'Bad url?,x,,ftp://nope\n'  # line 6
                    'Bad id?,x,has space,\n'  # line 7
                    'Clash?,x,shipping-costs,\n'  # line 8: a repo article's id
                    'Dup?,x,ok,\n'  # line 9: id of line 2
                    'Too,many,values,here,really\n')  # line 10
    target = tmp_path / "faq_imported"
    with pytest.raises(FaqImportError) as err:
        pairs = read_pairs(path, taken_ids={"shipping-costs": "knowledge_base/docs/shipping-costs.md"})
        write_imported(pairs, target)
    lines = [p.split(":")[0] for p in err.value.problems]
    assert lines == ["line 4", "line 5", "line 6", "line 7", "line 8", "line 9", "line 10"]
    text = str(err.value)
    assert "nothing was imported" in text and "ftp://nope" in text and "shipping-costs.md" in text
    assert "the same id as line 2" in text and "5 values for 4 columns" in text
    assert not target.exists()


def test_bad_json_items_are_reported_by_line(tmp_path):
    path = tmp_path / "faq.json"
    path.write_text('[\n  {"question": "Fine?", "answer": "Yes."},\n  {"question": "No answer?"},\n'
                    '  "just text",\n  {"question": "Extra?", "answer": "x", "votes": 3}\n]\n')
    with pytest.raises(FaqImportError) as err:
        read_pairs(path)
    assert [p.split(":")[0] for p in err.value.problems] == ["line 3", "line 4", "line 5"]
    assert "unknown key(s) ['votes']" in str(err.value)
    path.write_text('{"question": "x", "answer": "y"}')
    with pytest.raises(FaqImportError, match="JSON list of objects"):
        read_pairs(path)
    path.write_text('[{"question": "x",\n "answer": }]')
    with pytest.raises(FaqImportError, match="line 2: not valid JSON"):
        read_pairs(path)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("faq.txt", "question,answer\n", "use a .csv or .json file"),
    ("faq.csv", "", "the file is empty"),
    ("faq.csv", "question,reply\nx,y\n", "unknown column(s) ['reply']"),
    ("faq.csv", "question,answer\n", "no question/answer pairs"),
])
def test_files_that_are_not_faq_tables_are_refused(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FaqImportError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        read_pairs(path)


def test_reimport_updates_by_id_and_replace_drops_the_rest(tmp_path):
    target = tmp_path / "faq_imported"
    src = tmp_path / "faq.csv"
    src.write_text(CSV)
    write_imported(read_pairs(src), target)
    src.write_text("question,answer,id\nDo you ship to Mars?,Only in 2031.,mars\n")
    result = write_imported(read_pairs(src), target)
    assert (result.added, result.updated, result.total) == (0, 1, 2)
    assert "Only in 2031." in (target / "mars.md").read_text()
    result = write_imported(read_pairs(src), target, replace=True)
    assert (result.removed, result.total) == (1, 1) and list(_files(target)) == ["mars.md"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".faq_imported")]  # no leftovers


def test_a_failure_while_writing_leaves_the_previous_import_as_it_was(tmp_path, monkeypatch):
    target = tmp_path / "faq_imported"
    src = tmp_path / "faq.csv"
    src.write_text(CSV)
    write_imported(read_pairs(src), target)
    before = _files(target)
    real = faq_import.to_markdown
    calls = []

    def failing(pair, source=""):
        calls.append(pair.id)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(pair, source)

    monkeypatch.setattr(faq_import, "to_markdown", failing)
    src.write_text("question,answer,id\nNew one?,x,new1\nNew two?,y,new2\n")
    with pytest.raises(OSError, match="disk full"):
        write_imported(read_pairs(src), target)
    assert _files(target) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".faq_imported")]


def test_cli_imports_indexes_and_the_assistant_cites_the_pair(tmp_path, make_assistant, settings, capsys):
    src = tmp_path / "faq.csv"
    src.write_text(CSV)
    data = str(settings.data_dir)
    assert main(["--data-dir", data, "import-faq", str(src), "--fake-models"]) == 0
    out = capsys.readouterr().out
    assert "2 pairs" in out and "index:" in out
    assert {p.stem for p in imported_faq_dir(settings).glob("*.md")} >= {"mars"}
    emb = HashingEmbedder()
    index = faq_index(settings, emb)
    assert "mars" in {c.doc_id for c in index.snapshot().chunks}
    assert build_index(settings, emb).added == 0  # `shopdesk index` sees the same articles: nothing to do
    models = Models(emb, KeywordClassifier(), TemplateGenerator(), index)
    reply = make_assistant(models=models, retrieval_min_score=0.3).respond(
        Message("imp", "do you ship to mars"))
    assert reply.sources[0] == "mars" and "Do you ship to Mars? (https://shop.example/mars)" in reply.text
    assert "Earth" in reply.text


def test_cli_reports_bad_rows_and_exits_2(tmp_path, settings, capsys):
    src = tmp_path / "faq.csv"
    src.write_text("question,answer\nNo answer?,\n")
    assert main(["--data-dir", str(settings.data_dir), "import-faq", str(src), "--no-index"]) == 2
    assert "line 2: the answer is empty" in capsys.readouterr().err
    assert not imported_faq_dir(settings).exists()
