# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.log_collector; it shares its readers with the
clients' module and lives with it in _wiring/log_forwarding.py."""

from __future__ import annotations

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.log_forwarding import collector_main as main

__all__ = ["main"]
