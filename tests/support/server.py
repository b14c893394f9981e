"""Run `assistantd` as a real process on a free port, the way users run it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """`assistantd serve` (or any assistantd subcommand) in a subprocess."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *, command: str = "serve") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.command = command
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> LiveServer:
        args = [sys.executable, "-m", "assistantd", self.command]
        if self.command == "serve":
            args += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if wait and self.command == "serve":
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for_log_line(folder: Path, needle: str, timeout: float = 10.0) -> str:
    """The first line containing `needle` in the `*.log` files of `folder` (servers' and
    workers' logs), waiting for it to be written."""
    deadline = time.monotonic() + timeout
    while True:
        for path in sorted(folder.glob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if needle in line:
                    return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no line with {needle!r} in {folder}/*.log after {timeout}s")
        time.sleep(0.05)
