import pytest

from yoroi.settings import SettingsError, resolve


def test_order_is_defaults_file_environment_flags(tmp_path):
    (tmp_path / "yoroi.yml").write_text("forks: 3\ninventory: inv/file.yml\noutput: json\n")
    settings = resolve({"forks": 7}, environ={"YOROI_INVENTORY": "env.yml"}, cwd=tmp_path)
    assert settings.forks == 7 and settings.source("forks") == "flag --forks"
    assert settings.inventory == "env.yml" and settings.source("inventory") == "environment YOROI_INVENTORY"
    assert settings.output == "json" and settings.source("output").startswith("file ")
    assert settings.serial is None and settings.source("serial") == "default"


def test_unknown_key_in_file_is_refused(tmp_path):
    (tmp_path / "yoroi.yml").write_text("forkz: 3\n")
    with pytest.raises(SettingsError, match="unknown setting 'forkz'"):
        resolve({}, environ={}, cwd=tmp_path)


@pytest.mark.parametrize("flags", [{"forks": 0}, {"serial": "0"}, {"serial": "150%"}, {"output": "xml"}])
def test_bad_values_name_the_setting(tmp_path, flags):
    with pytest.raises(SettingsError) as error:
        resolve(flags, environ={}, cwd=tmp_path)
    assert list(flags)[0] in str(error.value)


def test_runs_dir_follows_state_dir(tmp_path):
    settings = resolve({"state_dir": str(tmp_path)}, environ={}, cwd=tmp_path)
    assert settings.runs_dir == tmp_path / "runs"


def test_extra_vars_take_key_value_json_and_files(tmp_path):
    import click

    from yoroi.commands._common import parse_extra_vars

    (tmp_path / "v.yml").write_text("yoroi_ssh_allow_groups: [admins]\n")
    parsed = parse_extra_vars(["a=1", '{"b": [1, 2]}', "@%s" % (tmp_path / "v.yml")])
    assert parsed == {"a": "1", "b": [1, 2], "yoroi_ssh_allow_groups": ["admins"]}
    for bad in ("novalue", "{not json", "@%s" % (tmp_path / "missing.yml"), "[1]"):
        with pytest.raises(click.BadParameter):
            parse_extra_vars([bad])
