"""The concern kit: protected accounts, refusals, the host lock, the guard, the exit."""

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _concern, _files, _guard, _lock

CONTROLS = {"X-001": "one thing", "X-002": "another"}


class Stop(Exception):
    pass


class FakeModule(object):
    def __init__(self, check_mode=False, diff=False, **params):
        self.params = dict(automation_account=None, break_glass_accounts=[], protected_accounts=[], guard_timeout=120)
        self.params.update(params)
        self.check_mode = check_mode
        self._diff = diff
        self.result = None

    def fail_json(self, msg, **kwargs):
        self.result = dict(kwargs, msg=msg, failed=True)
        raise Stop()

    def exit_json(self, **kwargs):
        self.result = kwargs
        raise Stop()


def test_protected_accounts_are_one_set_with_reasons():
    params = dict(automation_account="yoroi", break_glass_accounts=["breakglass", "yoroi"], protected_accounts=["svc"])
    protected = _concern.protected_accounts(params, environ={"SUDO_USER": "admin"})
    assert protected == {"root": "root", "yoroi": "automation account", "admin": "automation account (SUDO_USER)",
                         "breakglass": "break-glass account", "svc": "protected account"}
    concern = _concern.Concern(FakeModule(**params), "x", CONTROLS, environ={"SUDO_USER": "admin"})
    assert concern.automation == ["yoroi", "admin"]
    assert concern.must_keep_access() == [("yoroi", "automation"), ("admin", "automation"), ("breakglass", "break-glass")]


def test_the_shared_options_have_one_type_everywhere():
    spec = _concern.argument_spec({"own": dict(type="int")}, guard_timeout=300)
    assert spec["automation_account"] == dict(type="str")
    assert spec["break_glass_accounts"]["type"] == "list" and spec["protected_accounts"]["type"] == "list"
    assert spec["guard_timeout"] == dict(type="int", default=300) and "own" in spec
    assert "protected_accounts" not in _concern.argument_spec({}, protected=False)


def test_a_refusal_gives_an_error_finding_for_every_control():
    module = FakeModule()
    with pytest.raises(Stop):
        _concern.Concern(module, "x", CONTROLS).refuse("bad input", actual={"X-002": "seen"})
    result = module.result
    assert result["msg"] == "refused: bad input; nothing was changed" and result["changed"] is False
    assert [(f["control"], f["status"]) for f in result["findings"]] == [("X-001", "error"), ("X-002", "error")]
    assert result["findings"][1]["actual"] == "seen" and "bad input" in result["findings"][0]["evidence"]


def test_a_busy_host_is_a_refusal_not_a_hang(tmp_path, monkeypatch):
    monkeypatch.setattr(_concern, "HOST_LOCK", str(tmp_path / "host.lock"))
    monkeypatch.setattr(_concern, "LOCK_WAIT", 0)
    module = FakeModule()
    concern = _concern.Concern(module, "second", CONTROLS)
    ran = []
    with _lock.host_lock("first run", path=str(tmp_path / "host.lock")):
        with pytest.raises(Stop):
            with concern.changing():
                ran.append(1)
    assert ran == [] and "first run" in module.result["msg"] and module.result["msg"].startswith("refused: the host is busy")
    assert {f["status"] for f in module.result["findings"]} == {"error"}
    # free again, and check mode never takes it
    with concern.changing():
        ran.append(2)
    with _lock.host_lock("first run", path=str(tmp_path / "host.lock")):
        with _concern.Concern(FakeModule(check_mode=True), "audit", CONTROLS).changing():
            ran.append(3)
    assert ran == [2, 3]


def test_guard_arming_one_key_one_message(monkeypatch):
    module = FakeModule()
    concern = _concern.Concern(module, "x", CONTROLS)
    monkeypatch.setattr(_guard, "arm", lambda module, paths, units, timeout: {"token": "T", "unit": "u", "dir": "d"})
    assert concern.arm_guard(["/etc/x"], [], 120) == {"guard_token": "T", "guard": {
        "token": "T", "unit": "u", "dir": "d", "timeout": 120, "change": "x"}}
    assert concern.arm_guard([], [], 120) == {} and concern.arm_guard(["/etc/x"], [], 0) == {}

    def broken(*args):
        raise _guard.GuardError("no systemd")

    monkeypatch.setattr(_guard, "arm", broken)
    with pytest.raises(Stop):
        concern.arm_guard(["/etc/x"], [], 120)
    assert module.result["msg"] == "refused: the lockout guard could not be armed: no systemd; nothing was changed"
    assert len(module.result["findings"]) == 2


def test_exit_carries_findings_and_the_diff_only_in_diff_mode():
    for diff_mode in (False, True):
        module = FakeModule(diff=diff_mode)
        with pytest.raises(Stop):
            _concern.Concern(module, "x", CONTROLS).exit([{"control": "X-001", "status": "error"}], True, {"before": ""})
        assert module.result["changed"] is True and ("diff" in module.result) is diff_mode
        assert "see findings" in module.result["msg"]


def test_a_file_refused_by_its_validator_fails_with_every_control(tmp_path, monkeypatch):
    monkeypatch.setattr(_concern, "HOST_LOCK", str(tmp_path / "host.lock"))
    module = FakeModule()
    with pytest.raises(Stop):
        with _concern.Concern(module, "x", CONTROLS).changing():
            raise _files.ValidationFailed("refused to write /etc/x: validation failed: bad keyword")
    assert module.result["msg"].startswith("refused to write /etc/x")
    assert {f["status"] for f in module.result["findings"]} == {"error"} and len(module.result["findings"]) == 2
