"""asset_info in-process on this machine: changes nothing, the same in check mode, and sees
a socket this test opens with this process as its owner."""

import os
import socket

from ansible_collections.yoroi.baseline.plugins.modules import asset_info


def test_a_listening_socket_of_this_process_is_registered(run_module):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        result, failed = run_module(asset_info, {})
        checked, _failed = run_module(asset_info, {}, check_mode=True)
    finally:
        listener.close()
    assert not failed and result["changed"] is False
    asset = result["asset"]
    with open("/proc/self/comm") as handle:
        me = handle.read().strip()
    assert {"protocol": "tcp", "address": "127.0.0.1", "port": port, "processes": [me]} in asset["listening"]
    assert asset["kind"] == "host" and asset["kernel"] == os.uname()[2]
    assert asset["packages_installed"] > 0 and asset["updates_pending"] >= asset["security_updates_pending"]
    assert checked["asset"]["packages_installed"] == asset["packages_installed"]
