"""Strict loading of transcripts: every problem names the file and the line."""

from pathlib import Path

import pytest

from app.errors import TranscriptError
from evals.located import DuplicateKeyError, load
from evals.transcript import load_file, load_paths

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> str:
    with pytest.raises(TranscriptError) as err:
        load_file(path)
    return str(err.value)


def test_the_suite_loads_strictly_with_unique_ids_and_lines():
    transcripts = load_paths([REPO / "evals" / "transcripts"])
    assert len(transcripts) >= 40
    assert len({t.id for t in transcripts}) == len(transcripts)
    assert all(t.line >= 1 and all(turn.line >= t.line for turn in t.turns) for t in transcripts)
    assert all(len(t.digest) == 12 for t in transcripts)


def test_located_yaml_keeps_lines_and_refuses_duplicate_keys():
    data = load("a: 1\nb:\n  - x: 2\n  - y: 3\n")
    assert data.line_of("b") == 2 and data["b"].line_of(1) == 4 and data["b"][1].line == 4
    with pytest.raises(DuplicateKeyError, match="line 3: key 'a' appears twice"):
        load("a: 1\nb: 2\na: 3\n")


def test_unknown_keys_name_file_and_line(tmp_path):
    path = write(tmp_path, """\
id: t1
turns:
  - user: hi
    expect: {route: smalltalk, reply_contain: x}
  - user: bye
    expectt: {route: smalltalk}
colour: red
""")
    text = problems(path)
    assert f"{path}:4: [t1] turns[0].expect: unknown key 'reply_contain'" in text
    assert f"{path}:6: [t1] turns[1]: unknown key 'expectt'" in text
    assert f"{path}:7: [t1] transcript: unknown key 'colour'" in text


def test_bad_values_routes_and_actions_name_their_line(tmp_path):
    path = write(tmp_path, """\
- id: t2
  now: yesterday
  turns:
    - user: "yes"
      expect:
        route: order-status
        verified: "yes"
        actions: [{refund: {}}]
    - user: no
""")
    text = problems(path)
    assert f"{path}:2: [t2]: now='yesterday' is not an ISO timestamp" in text
    assert f"{path}:6: [t2] turns[0].expect.route: 'order-status' is not a route" in text
    assert f"{path}:7: [t2] turns[0].expect.verified: expected true or false" in text
    assert f"{path}:8: [t2] turns[0].expect.actions[0]: unknown action 'refund'" in text
    assert f"{path}:9: [t2] turns[1].user: YAML read this as False: quote" in text


def test_bad_fixture_rows_and_dangling_references_name_their_line(tmp_path):
    path = write(tmp_path, """\
id: t3
seed: empty
fixtures:
  customers:
    - {id: C1, name: Ada, email: not-an-email}
  orders:
    - id: SD-1
      customer: C2
      placed_at: "2026-01-01"
      status: delivred
      items:
        - {sku: X, name: Mug, qty: 0, price: 1}
  returns:
    - {id: R1, order: SD-1, status: requested, items: [{sku: Y, qty: 1}]}
  refunds: []
turns:
  - user: hi
final_state:
  orders: [{id: SD-1, colour: red}]
""")
    text = problems(path)
    assert f"{path}:5: [t3] fixtures.customers[0]: email: 'not-an-email' is not an email address" in text
    assert f"{path}:7: [t3] fixtures.orders[0]: status 'delivred' not in" in text
    assert f"{path}:12: [t3] fixtures.orders[0].items[0]: qty: 0 must be at least 1" in text
    assert f"{path}:8: [t3] fixtures.orders[0]: customer 'C2' is not in fixtures.customers" in text
    assert f"{path}:14: [t3] fixtures.returns[0].items[0]: sku 'Y' is not an item of order SD-1" in text
    assert f"{path}:15: [t3] fixtures: unknown table 'refunds'" in text
    assert f"{path}:19: [t3] final_state.orders[0]: unknown key 'colour'" in text


def test_demo_rows_count_as_references_for_seed_demo(tmp_path):
    path = write(tmp_path, """\
id: t4
fixtures:
  orders:
    - {id: SD-30001, customer: C0001, placed_at: "2026-01-01", status: pending,
       items: [{sku: X, name: Mug, qty: 1, price: 1}]}
  returns:
    - {id: RMA-9, order: SD-10001, status: refunded, items: [{sku: ANY, qty: 1}]}
turns:
  - user: hi
""")
    (t,) = load_file(path)
    assert t.seed == "demo" and t.fixtures["orders"][0]["customer"] == "C0001"


def test_yaml_syntax_errors_point_at_line_and_column(tmp_path):
    path = write(tmp_path, "id: x\ndescription: a: b\nturns: []\n")
    text = problems(path)
    assert f"{path}:2:15: not valid YAML" in text and "description: a: b" in text


def test_duplicate_ids_across_files_name_both_places(tmp_path):
    write(tmp_path, "id: same\nturns: [{user: hi}]\n", "a.yaml")
    write(tmp_path, "- id: other\n  turns: [{user: hi}]\n- id: same\n  turns: [{user: yo}]\n", "b.yaml")
    with pytest.raises(TranscriptError, match=r"b\.yaml:3: duplicate transcript id 'same' \(first in .*a\.yaml:1\)"):
        load_paths([tmp_path])


def test_tags_select_transcripts_and_an_unknown_tag_lists_the_known_ones(tmp_path):
    write(tmp_path, "- id: a\n  tags: [faq, policy]\n  turns: [{user: hi}]\n"
                    "- id: b\n  tags: [smalltalk]\n  turns: [{user: hi}]\n")
    assert [t.id for t in load_paths([tmp_path], ["policy", "nothing"])] == ["a"]
    with pytest.raises(TranscriptError, match=r"no transcript has any of the tags \['refunds'\]; tags in use: "
                                              r"\['faq', 'policy', 'smalltalk'\]"):
        load_paths([tmp_path], ["refunds"])


def test_a_folder_without_transcripts_is_an_error_not_an_empty_pass(tmp_path):
    with pytest.raises(TranscriptError, match="no transcript files"):
        load_paths([tmp_path])
