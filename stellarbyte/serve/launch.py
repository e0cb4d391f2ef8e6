"""Start `stellarbyte serve` as a child process on a free localhost port and wait until it answers /health.

Used by the server tests, the browser test and `stellarbyte bench serve`: they talk to a real server over
TCP, as a client would, rather than to an in-process app.
    with ServerProcess(model_dir, ["--api-key", "k"]) as server:
        OpenAI(base_url=server.base_url + "/v1", api_key="k")
Contract: the context exits with the child stopped (SIGTERM, then SIGKILL after `stop_timeout` s); if the
child dies or /health does not answer within `start_timeout` s, RuntimeError carries its last output.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, model_dir: str | Path, extra_args: list[str] | None = None, port: int | None = None,
                 start_timeout: float = 120.0, stop_timeout: float = 10.0, env: dict[str, str] | None = None) -> None:
        self.model_dir, self.extra_args = str(model_dir), list(extra_args or [])
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        # the child imports this very package, wherever it was imported from (editable installs can go stale)
        root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        self.env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else ""), **(env or {})}
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 -- lives as long as the child; closed in __exit__

    def output(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def start(self) -> ServerProcess:
        cmd = [sys.executable, "-m", "stellarbyte.cli", "serve", self.model_dir, "--port", str(self.port),
               "--log-level", "warning", *self.extra_args]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not answer /health within {self.start_timeout} s:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()
