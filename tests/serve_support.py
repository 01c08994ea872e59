"""Helpers of the service tests and benchmarks: keys, trained runs, a server child process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from shopseq.runs.nextitem import TrainConfig, load_split, train_next_item
from shopseq.serve import KeyStore


def train_run(store: Path, model: str, out: Path) -> Path:
    """Train ``model`` on the store into ``out``."""
    config = TrainConfig(model=model, out=out, n_epochs=1)
    split = load_split(store, config.split, threads=1)
    train_next_item(config, split)
    return out


class Keys:
    """A client and an admin key in a key file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        store = KeyStore(path)
        self.client, self.client_record = store.add("tests", "client")
        self.admin, self.admin_record = store.add("ops", "admin")

    @property
    def client_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.client}

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.admin}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``shopseq serve`` in a child process on 127.0.0.1 (stopped by the context manager)."""

    def __init__(self, run: Path, log: Path, keys: Path, stderr: Path, *extra: str) -> None:
        self.run, self.log, self.keys, self.stderr, self.extra = run, log, keys, stderr, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        import httpx

        command = [
            sys.executable, "-m", "shopseq", "serve", "--run", str(self.run), "--log",
            str(self.log), "--keys", str(self.keys), "--port", str(self.port), *self.extra,
        ]  # fmt: skip
        with self.stderr.open("ab") as err:
            self.process = subprocess.Popen(command, stdout=err, stderr=err)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.stderr.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"server not ready in {timeout}s: {self.stderr.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, then wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
