"""Background building of export snapshots, claimed from the database so any worker process can run them."""

from __future__ import annotations


def start_worker() -> None:
    """Start this process's export worker (none yet)."""


def stop_worker() -> None:
    """Stop this process's export worker."""
