"""A real `shopdesk serve` process on loopback, for the load test and the kill-the-server fault test.

The server runs in its own process (and process group: uvicorn's worker processes go with it), with
the settings given as ``SHOPDESK_*`` environment variables; ``start`` returns once ``/readyz``
answers, and says why when it does not (the process exited, or it was not ready in time), with the
tail of its log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.api import WORKER_HEADER
from app.errors import ShopdeskError

LOOPBACK = "127.0.0.1"


class ServerError(ShopdeskError):
    """The server process could not be started, or died."""


def free_port() -> int:
    """A loopback port nothing listens on right now (bound, then released)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``shopdesk serve`` as a child process: ``start()``, ``url``, ``stop()``, or a ``with`` block."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 1, fake_models: bool = True,
                 port: int | None = None, ready_timeout_s: float = 180.0) -> None:
        self.env = env  # SHOPDESK_* settings of the server, on top of this process's environment
        self.log_path = log_path
        self.workers = workers
        self.fake_models = fake_models
        self.port = port or free_port()
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "app.cli", "serve", "--host", LOOPBACK, "--port", str(self.port),
               "--workers", str(self.workers)]
        return [*cmd, "--fake-models"] if self.fake_models else cmd

    def start(self) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            # a new session: stop() signals the whole group, so no uvicorn worker outlives the test
            self.proc = subprocess.Popen(self.command(), env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Until every worker has answered /readyz: each probe is a new connection, which the kernel
        hands to any worker, and each worker names itself (``X-Shopdesk-Worker``)."""
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout_s
        seen: set[str] = set()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"the server exited with code {self.proc.returncode} before it was ready; "
                                  f"its log ({self.log_path}) ends with:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                resp = httpx.get(f"{self.url}/readyz", timeout=2.0, trust_env=False)
                if resp.status_code == 200:
                    seen.add(resp.headers.get(WORKER_HEADER, ""))
                    if len(seen) >= self.workers:
                        return
                    continue
            time.sleep(0.3)
        self.stop()
        raise ServerError(f"the server was not ready within {self.ready_timeout_s:.0f} s; its log "
                          f"({self.log_path}) ends with:\n{self.log_tail()}")

    def wait_exit(self, timeout_s: float = 30.0) -> int:
        """The exit code of a server that is dying (e.g. a fault hook ended it); waits for it."""
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout_s)
        self._kill_group()  # workers of a supervisor that died, if any
        return code

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL to the group if it hangs."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout_s)
        self._kill_group()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def _kill_group(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
