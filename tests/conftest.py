"""Shared fixtures: a real backend on 127.0.0.1, the shared sample and parity-fixture folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The project's shared material (samples, parity fixtures): $EXOMNI_SHARED or ../shared."""
    return Path(os.environ.get("EXOMNI_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    d = shared_dir() / "samples"
    if not d.is_dir():
        pytest.skip(f"shared samples not found at {d} (set EXOMNI_SHARED)")
    return d


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The real HTTP server in a child process, with a fresh take store; yields its base URL."""
    from backend.server.launcher import LocalServer

    root = tmp_path_factory.mktemp("server")
    with LocalServer(root / "store", log_path=root / "server.log") as server:
        yield server.url


def pytest_sessionfinish(session, exitstatus):
    # "No tests collected" (5) is not a failure of the product, e.g. when a filter selects nothing.
    if exitstatus == 5:
        session.exitstatus = 0
