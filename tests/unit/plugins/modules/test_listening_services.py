"""listening_services in-process on this machine, in check mode: a socket this test opens on
every address fails SVC-001 naming its port and process, passes once allowlisted, and a
loopback-only one passes by policy. Nothing is stopped (no unit is listed)."""

import socket

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import listening_services


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    yield sock
    sock.close()


def me():
    with open("/proc/self/comm") as handle:
        return handle.read().strip()


def ours(result, port):
    return [f for f in result["findings"] if f["control"] == "SVC-001" and f.get("subject") == "tcp/%d" % port]


def test_a_stray_listener_fails_until_allowlisted(run_module, listener):
    listener.bind(("0.0.0.0", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    result, failed = run_module(listening_services, {}, check_mode=True)
    assert not failed and result["changed"] is False
    found = ours(result, port)
    assert [f["status"] for f in found] == ["fail"]
    assert "0.0.0.0:%d %s" % (port, me()) in found[0]["actual"]
    allowed, _failed = run_module(listening_services, {"allowlist": [{"port": port, "process": me()}]}, check_mode=True)
    assert ours(allowed, port) == []
    other, _failed = run_module(listening_services, {"allowlist": [{"port": port, "process": "nginx"}]}, check_mode=True)
    assert [f["status"] for f in ours(other, port)] == ["fail"]


@pytest.mark.parametrize("loopback, statuses", [(True, []), (False, ["fail"])])
def test_a_loopback_listener_passes_by_policy(run_module, listener, loopback, statuses):
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    result, _failed = run_module(listening_services, {"allow_loopback": loopback}, check_mode=True)
    assert [f["status"] for f in ours(result, port)] == statuses
    assert not [f for f in result["findings"] if f["control"] == "SVC-002"]
