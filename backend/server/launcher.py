"""Start the real backend server as a child process on 127.0.0.1 and wait until it answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import requests

from exomni_blender.core import contract as C


def free_port(host: str = C.DEFAULT_HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalServer:
    """`with LocalServer(store) as server: requests.get(server.url + ...)`."""

    def __init__(self, store, port: int | None = None, token: str | None = None, extra_args=(),
                 log_path=None, startup_timeout: float = 60.0):
        self.store, self.token = str(store), token
        self.port = port or free_port()
        self.url = f"http://{C.DEFAULT_HOST}:{self.port}"
        self.extra_args = list(extra_args)
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self) -> "LocalServer":
        cmd = [sys.executable, "-m", "backend.cli", "serve", "--host", C.DEFAULT_HOST, "--port", str(self.port),
               "--store", self.store, "--log-level", "warning", *self.extra_args]
        if self.token:
            cmd += ["--token", self.token]
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=self._log, env={**os.environ})
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()  # closes the log
                raise RuntimeError(f"the backend exited during start-up (status {self.process.returncode})"
                                   + (f"; see {self.log_path}" if self.log_path else ""))
            try:
                if requests.get(self.url + C.HEALTH, timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the backend did not answer on {self.url} within {self.startup_timeout:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
