"""Yoroi: one security baseline for server fleets, audited and remediated by the same code."""

__version__ = "0.1.0"
