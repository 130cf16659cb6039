"""Start the real backend server as a child process on 127.0.0.1 and wait until it answers.

The health poll and the stop are the add-on's launcher's (`exomni_blender.remote.launcher`): one
start-up logic for the add-on's Start Backend, the CLI's demo and the tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from exomni_blender.core import contract as C
from exomni_blender.remote.launcher import poll_health, terminate


def free_port(host: str = C.DEFAULT_HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalServer:
    """`with LocalServer(store) as server: requests.get(server.url + ...)`."""

    def __init__(self, store, port: int | None = None, token: str | None = None, extra_args=(),
                 log_path=None, startup_timeout: float = 60.0, env=None, prefix=()):
        """`prefix`: argv the server command is run under (e.g. a mount namespace with a small disk)."""
        self.store, self.token = str(store), token
        self.port = port or free_port()
        self.url = f"http://{C.DEFAULT_HOST}:{self.port}"
        self.extra_args = list(extra_args)
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.env = env or {}
        self.prefix = list(prefix)
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self) -> "LocalServer":
        cmd = [*self.prefix, sys.executable, "-m", "backend.cli", "serve", "--host", C.DEFAULT_HOST, "--port", str(self.port),
               "--store", self.store, "--log-level", "warning", *self.extra_args]
        env = {**os.environ, **self.env}
        if self.token is not None:  # in the environment, never argv (`ps` shows argv to every user)
            env["EXOMNI_TOKEN"] = self.token
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=self._log, env=env)
        try:
            poll_health(self.url, self.token or "", self.process, timeout=self.startup_timeout,
                        log=str(self.log_path) if self.log_path else None)
        except Exception as exc:
            self.stop()
            raise RuntimeError(str(exc)) from None
        return self

    def kill(self) -> None:
        """Stop it as a crash would (SIGKILL): nothing is cleaned up."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_log()

    def stop(self) -> None:
        terminate(self.process, 10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
