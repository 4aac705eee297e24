"""Every role option and every CLI command is documented in the README."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_every_role_option_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = []
    for spec in sorted((ROOT / "roles").glob("*/meta/argument_specs.yml")):
        options = yaml.safe_load(spec.read_text())["argument_specs"]["main"]["options"]
        missing += ["%s (%s)" % (name, spec.parts[-3]) for name in options if "`%s`" % name not in readme]
    assert missing == []


def test_every_site_variable_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    options = yaml.safe_load((ROOT / "meta" / "site_variables.yml").read_text())["options"]
    internal = {"yoroi_lab_container", "yoroi_lab_release", "yoroi_serial"}
    assert [n for n in options if n not in internal and n not in readme] == []


def test_every_command_is_in_the_readme():
    from yoroi.cli import main

    readme = (ROOT / "README.md").read_text()
    assert [c for c in main.commands if "`yoroi %s`" % c not in readme] == []
