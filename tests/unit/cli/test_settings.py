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
