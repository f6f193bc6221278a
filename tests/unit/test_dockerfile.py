"""The image's HEALTHCHECK asks `/healthz` where the image serves it, and means what it says.

Docker is not needed: the Dockerfile is read as text, and the HEALTHCHECK's own command is run
here against a loopback server answering 200, then 503, then nothing at all.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments out."""
    text = (REPO / "Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def only(name: str) -> str:
    found = [args for word, args in instructions() if word == name]
    assert len(found) == 1, f"expected one {name}, found {found}"
    return found[0]


def healthcheck_cmd() -> list[str]:
    args = only("HEALTHCHECK")
    assert " CMD " in f" {args} ", args
    cmd = json.loads(args.split("CMD", 1)[1].strip())  # the exec form: no shell in between
    assert isinstance(cmd, list) and all(isinstance(a, str) for a in cmd)
    return cmd


def listen_port() -> int:
    envs = [args for word, args in instructions() if word == "ENV"]
    found = (re.search(r"TICKWATCH_HTTP_LISTEN=\S*:(\d+)", a) for a in envs)
    ports = [int(m.group(1)) for m in found if m]
    assert len(ports) == 1, envs
    return ports[0]


def test_the_healthcheck_asks_healthz_on_the_port_the_image_listens_on() -> None:
    port = listen_port()
    cmd = healthcheck_cmd()
    urls = re.findall(r"http://[^'\"\s]+", " ".join(cmd))
    assert urls == [f"http://127.0.0.1:{port}/healthz"], urls
    assert only("EXPOSE") == str(port)
    assert cmd[0] == "python"  # python:3.11-slim has no curl or wget
    # and the shipped config takes its listen address from that variable
    shipped = yaml.safe_load((REPO / "alerts.yaml").read_text())
    assert "${TICKWATCH_HTTP_LISTEN" in str(shipped["http"]["listen"])


@contextmanager
def answering(status: int) -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"status": "ok"}' if self.path == "/healthz" else b"not found"
            self.send_response(status if self.path == "/healthz" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(port: int) -> int:
    cmd = [a.replace(f":{listen_port()}/", f":{port}/") for a in healthcheck_cmd()]
    assert cmd[0] == "python"
    done = subprocess.run([sys.executable, *cmd[1:]], capture_output=True, timeout=30)
    return done.returncode


def test_the_healthcheck_passes_on_200_and_fails_on_503_or_no_answer() -> None:
    with answering(200) as port:
        assert run_healthcheck(port) == 0
    with answering(503) as port:  # /healthz's "failing"
        assert run_healthcheck(port) != 0
    with socket.socket() as s:  # a port nobody listens on: the daemon is gone
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert run_healthcheck(free) != 0
