"""Exceptions users can act on. The CLI maps each to a one-line message and an exit code."""

from __future__ import annotations


class BurstwatchError(Exception):
    """Base class: a problem with the user's input or environment, never a bug."""


class NotACaptureError(BurstwatchError):
    """The input is not a capture format burstwatch reads (checked by magic number)."""


class InputError(BurstwatchError):
    """The input cannot be opened or read at all (missing file, permission, I/O error)."""


class LedgerError(BurstwatchError):
    """The ledger file cannot be used: in use by another process, not a ledger, too new."""
