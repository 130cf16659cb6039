"""Storage faults named, against the real server on 127.0.0.1 (issue 20): a damaged jobs database set
aside at start, a locked one answered with store_busy, an unwritable store refused at start in words."""

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from backend.jobs import DB_NAME
from backend.server.launcher import LocalServer, free_port
from exomni_blender.core import contract as C

REPO = Path(__file__).resolve().parents[1]


def _wait(url, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(url + C.job_path(job_id), timeout=10).json()
        if job.get("state") in C.FINISHED_STATES:
            return job
        time.sleep(0.05)
    raise AssertionError(job)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_jobs_database_is_set_aside_at_start_with_a_message(tmp_path, damage):
    store, log = tmp_path / "store", tmp_path / "server.log"
    with LocalServer(store, log_path=log) as s:
        r = requests.post(s.url + C.TAKES, json={"text": "A take made before the damage."}, timeout=10)
        take_id = _wait(s.url, r.json()["job_id"])["take_id"]
    db = store / DB_NAME
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    if damage == "garbage":
        db.write_bytes(b"this is not a database at all\n" * 100)
    else:
        with sqlite3.connect(db) as con:  # enough rows for several pages, then cut in the middle
            con.executemany("INSERT INTO jobs (job_id, state, request) VALUES (?, 'done', ?)",
                            [(f"{i:016x}", "{}" * 200) for i in range(300)])
        con.close()
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 2])
    with LocalServer(store, log_path=log) as s:
        assert requests.get(s.url + C.HEALTH, timeout=5).ok
        assert take_id in requests.get(s.url + C.TAKES, timeout=5).json()["takes"]  # takes are kept
        r = requests.post(s.url + C.TAKES, json={"text": "And one after."}, timeout=10)
        assert _wait(s.url, r.json()["job_id"])["state"] == C.DONE
    aside = list(store.glob(DB_NAME + ".corrupt-*"))
    text = log.read_text(errors="replace")
    assert aside and "set aside" in text and aside[0].name in text
    assert "Traceback" not in text, text[-3000:]


def test_a_locked_jobs_database_answers_store_busy_then_recovers(tmp_path):
    store = tmp_path / "store"
    with LocalServer(store, log_path=tmp_path / "server.log") as s:
        holder = sqlite3.connect(store / DB_NAME, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            t0 = time.monotonic()
            r = requests.post(s.url + C.TAKES, json={"text": "Blocked."}, timeout=60)
            took = time.monotonic() - t0
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        print(f"locked jobs database: {r.status_code} after {took:.1f} s")
        assert r.status_code == 503 and r.json()["error"]["code"] == C.E_STORE_BUSY, r.text
        assert "retry" in r.json()["error"]["message"] and took < 20
        r = requests.post(s.url + C.TAKES, json={"text": "Free again."}, timeout=10)
        assert _wait(s.url, r.json()["job_id"])["state"] == C.DONE


def _run_serve(store, prefix=()):
    return subprocess.run([*prefix, sys.executable, "-m", "backend.cli", "serve", "--port", str(free_port()),
                           "--store", str(store)], capture_output=True, text=True, timeout=60, cwd=REPO)


def test_a_store_that_cannot_be_made_is_refused_at_start_in_words(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = _run_serve(blocker / "store")
    assert r.returncode == 2 and "cannot use the take store" in r.stderr and "--store" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def _unshare_works() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=10).returncode == 0


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _unshare_works(),
                    reason="needs a private mount namespace (unshare) for a read-only store")
def test_a_read_only_store_is_refused_at_start_in_words(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    ro = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    r = _run_serve(store, prefix=["unshare", "-rm", "sh", "-c", ro, str(store)])
    assert r.returncode == 2 and "cannot use the take store" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
