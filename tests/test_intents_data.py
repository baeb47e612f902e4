"""The training data: coverage, variety, no duplicates; the business-name lexicon stays out of our own words."""

import re
from collections import Counter
from pathlib import Path

import yaml

from intents.dataset import DATA_DIR, load_training_data, normalise
from intents.entities import EntityExtractor
from intents.labels import INTENTS
from intents.lexical import load_business_names


def test_every_intent_has_varied_examples_and_oos_spans_many_domains():
    examples = load_training_data()
    counts = Counter(e.intent for e in examples)
    assert set(counts) == set(INTENTS)
    assert min(counts.values()) >= 40, counts
    assert counts["out_of_scope.other"] >= 400
    domains = re.findall(r"^\s*# domain: (.+)$", (DATA_DIR / "out_of_scope.other.yaml").read_text(), re.M)
    assert len(set(domains)) >= 30, domains


def test_no_duplicates_across_all_files_and_file_names_match_intents():
    seen: dict[str, str] = {}
    for path in sorted(DATA_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert path.stem == doc["intent"], path
        assert doc.get("description"), f"{path} needs a description saying what is and is not this intent"
        for text in doc["examples"]:
            key = normalise(text)
            assert key not in seen, f"{text!r} in {path.name} and {seen[key]}"
            seen[key] = path.name


def test_examples_vary_the_way_shoppers_write():
    texts = [e.text for e in load_training_data()]
    extractor = EntityExtractor("SD-")

    def share(pred) -> int:
        return sum(1 for t in texts if pred(t))

    assert share(lambda t: t.isupper() and len(t) > 6) >= 15  # shouting
    assert share(lambda t: len(t.split()) <= 2) >= 150  # terse
    assert share(lambda t: len(t.split()) >= 25) >= 25  # long, rambling, with context
    assert share(lambda t: extractor.extract(t).order_ids) >= 60  # order numbers inside sentences
    assert share(lambda t: extractor.extract(t).emails) >= 15
    assert share(lambda t: re.search(r"\b(not|don'?t|dont|no)\b", t, re.I)) >= 100  # negation
    assert share(lambda t: re.search(r"colour|favourite|cancelled|postcode|parcel", t, re.I)) >= 40  # British
    assert share(lambda t: "?" not in t and "." not in t) >= 1000  # no punctuation


def test_business_lexicon_leaves_out_what_this_shop_itself_uses():
    names = set(load_business_names())
    assert len(names) >= 150
    ours = {"ups", "usps", "fedex", "dhl", "royal mail", "paypal", "visa", "mastercard", "amex", "apple pay",
            "google pay", "klarna", "afterpay", "fern & field", "fern and field", "boots", "next", "target"}
    assert not names & ours
    lexicon = Path(__file__).resolve().parents[1] / "intents" / "lexicon" / "other_businesses.txt"
    assert all(line == line.strip() for line in lexicon.read_text().splitlines())
