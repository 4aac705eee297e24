"""Port choice for lab hosts: a free loopback port, and another one when it was taken."""

import socket

import pytest

from yoroi.lab import hosts
from yoroi.lab.hosts import LabError, LabHost
from yoroi.lab.podman import PodmanError

IN_USE = ("Error: rootlessport listen tcp 127.0.0.1:40001: bind: address already in use")


def _host():
    return LabHost("lab-demo-1", "yoroi-lab-demo-1", None, "yoroi", "/k")


def test_free_port_is_not_listened_on_and_not_taken():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        held = busy.getsockname()[1]
        taken = {held}
        ports = set()
        for dummy in range(20):
            port = hosts.free_port(taken)
            assert port not in taken
            taken.add(port)
            ports.add(port)
            with socket.socket() as probe:  # nothing holds it: binding works
                probe.bind(("127.0.0.1", port))
    assert held not in ports and len(ports) == 20


def test_port_in_use_is_recognised():
    assert hosts.port_in_use(PodmanError(["run"], 126, "", IN_USE))
    assert not hosts.port_in_use(PodmanError(["run"], 125, "", "Error: no such image"))


def test_a_taken_port_starts_the_host_again_on_another():
    attempts, removed = [], []

    def start(host, port):
        attempts.append(port)
        if len(attempts) < 3:
            raise PodmanError(["run"], 126, "", IN_USE)

    port = hosts.start_with_free_port(_host(), start, set(), remove=removed.append)
    assert len(attempts) == 3 and len(set(attempts)) == 3
    assert port == attempts[-1]
    assert [h.container for h in removed] == ["yoroi-lab-demo-1"] * 2


def test_other_failures_are_not_retried():
    attempts = []

    def start(host, port):
        attempts.append(port)
        raise PodmanError(["run"], 125, "", "Error: image not known")

    with pytest.raises(PodmanError):
        hosts.start_with_free_port(_host(), start, set())
    assert len(attempts) == 1


def test_giving_up_names_the_host():
    def start(host, port):
        raise PodmanError(["run"], 126, "", IN_USE)

    with pytest.raises(LabError, match="yoroi-lab-demo-1: no free port after 3 attempts"):
        hosts.start_with_free_port(_host(), start, set(), attempts=3)
