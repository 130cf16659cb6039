"""server: N clients x M takes against a real server on 127.0.0.1: latency, throughput, health, memory.

Starts `exomni serve` on a free loopback port with a fresh store, then N client threads (each with the
headers the add-on's client sends, over a keep-alive session) each make M takes of a short line, one after another. Prints p50/p95/max submit-to-done
latency, takes per second, then /v1/health latency while a long lip sync runs in the engine worker,
and the memory growth of the server (its HTTP process and its engine worker, resident set) per
1,000 takes after a warm-up round.

`--soak SECONDS` instead runs a bounded soak with retention on, side by side: the same clients for the
same time against a server with an empty store and against one whose store already holds
`--store-takes` takes (20,000 by default), both pruning with `--keep-bytes` to the filled store's size.
It prints takes/s and latency for each, their ratio, and the memory growth per 1,000 takes of the
HTTP process and of the engine worker, each on its own.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

LINE = "Bob may buy five blue boats."


def add_arguments(parser):
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--takes", type=int, default=50, help="takes per client (default 50)")
    parser.add_argument("--warmup", type=int, default=20, help="takes made before memory is first measured")
    parser.add_argument("--lipsync-seconds", type=float, default=300.0,
                        help="length of the recording lip-synced while health is timed (default 300)")
    parser.add_argument("--soak", type=float, default=0.0, metavar="SECONDS",
                        help="run the retention soak for this long per store instead (see above)")
    parser.add_argument("--store-takes", type=int, default=20_000,
                        help="takes already in the store of the soak's second run (default 20,000)")


def _rss_kb(pid: int) -> int:
    """Resident memory of a process and its children (the engine worker), from /proc."""
    total = 0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):  # the worker is the child of the jobs thread
        try:
            pids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class ApiError(Exception):
    pass


def _rss_split_kb(pid: int) -> tuple[int, int]:
    """(the HTTP process's resident memory, its children's: the engine worker) in KB."""
    total = _rss_kb(pid)
    try:
        own = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        own = 0
    return own, total - own


def _fill_store(store: Path, sample: Path, count: int) -> int:
    """`count` copies of one take folder in the store (hard links: quick, and sized like real takes)."""
    import os

    store.mkdir(parents=True, exist_ok=True)
    files = [f for f in sample.iterdir() if f.is_file()]
    for i in range(count):
        folder = store / f"soak{i:06d}"
        folder.mkdir()
        for f in files:
            os.link(f, folder / f.name)
    return sum(f.stat().st_size for f in files) * count


def _growth_per_1000(samples) -> tuple[float, float]:
    """MB per 1,000 takes of the HTTP process and of the worker: the least-squares slope of resident memory
    against takes done over the second half of the run. The first-to-last difference also counts what
    settles once (allocator arenas, the database's page cache, the timer heap); a leak keeps climbing."""
    half = samples[len(samples) // 2:]
    if len(half) < 3 or half[-1][0] == half[0][0]:
        return float("nan"), float("nan")
    takes = np.array([s[0] for s in half], float)
    return tuple(float(np.polyfit(takes, np.array([s[i] for s in half], float), 1)[0]) * 1000 / 1024 for i in (1, 2))


def _percentile(values, q):
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run(args) -> int:
    import requests
    import soundfile as sf

    from exomni_blender.core import contract as C

    from ..server.launcher import LocalServer

    class Client:
        """What the add-on's client sends, over one keep-alive session (the backend imports only the core)."""

        def __init__(self, url):
            self.url, self.session = url, requests.Session()
            self.session.headers[C.CLIENT_HEADER] = "exomni-bench"
            self.session.trust_env = False

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.session.close()

        def _call(self, method, path, **kw):
            r = self.session.request(method, self.url + path, timeout=60, **kw)
            if r.status_code >= 400:
                raise ApiError(r.text[:200])
            return r.json()

        def submit_take(self, audio=None, **fields):
            if audio is None:
                return self._call("POST", C.TAKES, json=fields)
            with open(audio, "rb") as fh:
                return self._call("POST", C.TAKES, files={"audio": (Path(audio).name, fh)},
                                  data={"request": json.dumps(fields)})

        def job(self, job_id):
            return self._call("GET", C.job_path(job_id))

        def cancel(self, job_id):
            return self._call("DELETE", C.job_path(job_id))

        def health(self):
            return self._call("GET", C.HEALTH)

        def wait(self, job_id, interval=0.02):
            while (status := self.job(job_id))["state"] not in C.FINISHED_STATES:
                time.sleep(interval)
            return status

    if args.clients < 1 or args.takes < 1:
        print("exomni bench server: --clients and --takes must be at least 1")
        return 2
    if args.soak > 0:
        return _soak(args, Client, LocalServer, C)
    with tempfile.TemporaryDirectory(prefix="exomni-bench-server-") as tmp:
        root = Path(tmp)
        max_queued = str(max(32, args.clients * 2))
        with LocalServer(root / "store", log_path=root / "server.log", extra_args=["--max-queued", max_queued]) as server:
            url, pid = server.url, server.process.pid

            def make(count, latencies, errors):
                with Client(url) as client:
                    for i in range(count):
                        t0 = time.perf_counter()
                        try:
                            job = client.submit_take(text=LINE, seed=i)
                            status = client.wait(job["job_id"], interval=0.02)
                        except ApiError as exc:
                            errors.append(str(exc))
                            continue
                        if status["state"] == C.DONE:
                            latencies.append(time.perf_counter() - t0)
                        else:
                            errors.append(str(status.get("error")))

            warm: list = []
            make(args.warmup, warm, [])
            rss_start = _rss_kb(pid)
            latencies: list = []
            errors: list = []
            threads = [threading.Thread(target=make, args=(args.takes, latencies, errors)) for _ in range(args.clients)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            rss_end = _rss_kb(pid)
            done = len(latencies)
            print(f"{args.clients} clients x {args.takes} takes: {done} done, {len(errors)} failed"
                  + (f" (first: {errors[0][:120]})" if errors else ""))
            print(f"submit-to-done latency: p50 {_percentile(latencies, 50) * 1000:.0f} ms, "
                  f"p95 {_percentile(latencies, 95) * 1000:.0f} ms, max {max(latencies, default=0) * 1000:.0f} ms")
            print(f"throughput: {done / wall:.1f} takes/s over {wall:.1f} s")
            per_1000 = (rss_end - rss_start) / 1024 / max(done, 1) * 1000
            print(f"memory (HTTP process + engine worker): {rss_start / 1024:.0f} MB after warm-up, "
                  f"{rss_end / 1024:.0f} MB after {done} takes: {per_1000:+.1f} MB per 1,000 takes")

            rate = 16000
            t = np.arange(int(rate * args.lipsync_seconds)) / rate
            voiced = (np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * 0.4).astype(np.float32)
            wav = root / "long.wav"
            sf.write(str(wav), voiced, rate, subtype="PCM_16")
            with Client(url) as client:
                job = client.submit_take(audio=str(wav), mode="lipsync")
                while client.job(job["job_id"])["state"] == C.QUEUED:
                    time.sleep(0.05)
                health = []
                for _ in range(50):
                    h0 = time.perf_counter()
                    client.health()
                    health.append((time.perf_counter() - h0) * 1000)
                    time.sleep(0.05)
                state = client.job(job["job_id"])["state"]
                c0 = time.perf_counter()
                client.cancel(job["job_id"])
                final = client.wait(job["job_id"], interval=0.02)
                cancel_ms = (time.perf_counter() - c0) * 1000
            print(f"health during a {args.lipsync_seconds:.0f} s lip sync ({state}): p50 {_percentile(health, 50):.1f} ms, "
                  f"p95 {_percentile(health, 95):.1f} ms, max {max(health):.1f} ms; "
                  f"cancel took {cancel_ms:.0f} ms ({final['state']})")
    return 0


def _soak(args, Client, LocalServer, C) -> int:
    """Two bounded soaks with retention on, an empty store beside a full one (see the module's words)."""
    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic.engine import PhoneticEngine

    results = {}
    with tempfile.TemporaryDirectory(prefix="exomni-bench-soak-") as tmp:
        root = Path(tmp)
        sample = PhoneticEngine().make_take(TakeRequest(text=LINE, fps=30.0), Progress()).save(root / "sample")
        take_bytes = sum(f.stat().st_size for f in sample.iterdir())
        keep = (args.store_takes + 50) * take_bytes  # the full store sits at its limit: every take prunes one
        for label, prefill in (("empty store", 0), (f"{args.store_takes:,} takes", args.store_takes)):
            store = root / label.replace(" ", "_").replace(",", "")
            t0 = time.perf_counter()
            _fill_store(store, sample, prefill)
            filled = time.perf_counter() - t0
            # A short job history, filled during the warm-up: what memory does after it is the leak, if any,
            # not the history growing to its (default 1,000-job) bound.
            with LocalServer(store, log_path=root / f"{store.name}.log", env={"EXOMNI_KEEP_JOBS": "100"},
                             extra_args=["--keep-bytes", str(keep), "--max-queued", "64"]) as server:
                pid = server.process.pid
                latencies, errors = [], []

                def soak(deadline):
                    with Client(server.url) as client:
                        i = 0
                        while time.perf_counter() < deadline:
                            t = time.perf_counter()
                            try:
                                job = client.submit_take(text=LINE, seed=i)
                                status = client.wait(job["job_id"], interval=0.01)
                            except Exception as exc:  # a refused or dropped request is counted, not fatal
                                errors.append(str(exc)[:120])
                                continue
                            i += 1
                            (latencies if status["state"] == C.DONE else errors).append(
                                time.perf_counter() - t if status["state"] == C.DONE else str(status.get("error")))

                soak(time.perf_counter() + min(10.0, args.soak / 4))  # warm-up: caches, the index, the worker
                latencies.clear()
                http0, worker0 = _rss_split_kb(pid)
                t0 = time.perf_counter()
                threads = [threading.Thread(target=soak, args=(t0 + args.soak,)) for _ in range(args.clients)]
                for t in threads:
                    t.start()
                samples = []  # (takes done, HTTP KB, worker KB), once a second
                while any(t.is_alive() for t in threads):
                    samples.append((len(latencies), *_rss_split_kb(pid)))
                    time.sleep(1.0)
                for t in threads:
                    t.join()
                wall = time.perf_counter() - t0
                http1, worker1 = _rss_split_kb(pid)
                done = len(latencies)
                results[label] = done / wall
                print(f"{label} (filled in {filled:.1f} s), retention --keep-bytes {keep / 2**20:.0f} MB: "
                      f"{done} takes in {wall:.0f} s, {done / wall:.1f} takes/s, {len(errors)} failed; latency p50 "
                      f"{_percentile(latencies, 50) * 1000:.0f} ms, p95 {_percentile(latencies, 95) * 1000:.0f} ms")
                per = 1000 / max(done, 1) / 1024
                http_slope, worker_slope = _growth_per_1000(samples)
                print(f"  memory per 1,000 takes, first to last: HTTP process {(http1 - http0) * per:+.2f} MB "
                      f"({http1 / 1024:.0f} MB), engine worker {(worker1 - worker0) * per:+.2f} MB "
                      f"({worker1 / 1024:.0f} MB); steady growth over the second half: HTTP {http_slope:+.2f} MB, "
                      f"worker {worker_slope:+.2f} MB")
    empty, full = results.values()
    print(f"throughput with a full store: {full / empty:.2f}x the empty store's (target: 0.8x or more)")
    return 0
