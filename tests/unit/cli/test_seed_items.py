"""The items of the call for attention are named once, in controls/catalog.yml."""

from pathlib import Path

import yaml

from yoroi import collection, report

CATALOG = yaml.safe_load((Path(__file__).resolve().parents[3] / "controls" / "catalog.yml").read_text())


def test_every_control_answers_a_named_seed_item():
    names = CATALOG["seed_items"]
    assert all(isinstance(key, str) and name for key, name in names.items())
    assert {control["seed"] for control in CATALOG["controls"]} <= set(names)


def test_reports_take_seed_item_names_from_the_catalog(monkeypatch):
    assert collection.seed_items()["2.2"] == CATALOG["seed_items"]["2.2"]
    monkeypatch.setattr(collection, "seed_items", lambda: {"1.1": "Named in the catalog"})
    document = {"hosts": {}, "findings": [{"host": "h", "control": "ACC-001", "status": "pass", "seed": "1.1"}]}
    assert report.by_seed(document)["1.1"]["name"] == "Named in the catalog"
