"""A live coordinator for the client's tests: the real `agentflow` binary (AGENTFLOW_BIN, else
the repository's .build/debug/agentflow), its HTTP API with bearer tokens, two simulated
workers, a SQLite file — all on free loopback ports in a temporary directory, stopped after."""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Coordinator:
    def __init__(self, directory: Path):
        self.dir = directory
        self.binary = os.environ.get("AGENTFLOW_BIN") or str(ROOT / ".build/debug/agentflow")
        wp, cp, hp = free_ports(3)
        self.admin = "admin-" + secrets.token_hex(16)
        self.read = "read-" + secrets.token_hex(16)
        # Tokens bound to a tenant: team-a may submit and cancel its own jobs, team-b only read its own.
        self.team_a = "team-a-" + secrets.token_hex(16)
        self.team_b = "team-b-" + secrets.token_hex(16)
        (directory / "tokens").write_text(f"admin {self.admin}\nread {self.read}\n"
                                          f"submit {self.team_a} tenant=team-a\nread {self.team_b} tenant=team-b\n")
        self.cluster = directory / "cluster.yaml"
        self.cluster.write_text(f"""coordinator:
  workers: tcp://127.0.0.1:{wp}
  clients: ipc://{directory}/clients.sock
  database: {directory}/agentflow.db
  http: 127.0.0.1:{hp}
  httpTokens: {directory}/tokens
models:
  - {{name: smollm2-135m, price: {{input: 0.02, output: 0.05}}, context: 8192}}
  - {{name: gemma3-270m,  price: {{input: 0.04, output: 0.10}}, context: 8192}}
workers:
  - {{name: gpu0, gpus: [0], model: smollm2-135m, slots: 4, backend: {{kind: sim, timeScale: 0.02, seed: 1}}}}
  - {{name: gpu1, gpus: [1], model: gemma3-270m, slots: 4, backend: {{kind: sim, timeScale: 0.02, seed: 2}}}}
tenants:
  - {{name: team-a, weight: 2, budget: {{usd: 200, per: day}}}}
  - {{name: team-b}}
""")
        self.url = f"http://127.0.0.1:{hp}"
        self.procs = []
        self.start("coordinator")
        self.start("worker", "--name", "gpu0")
        self.start("worker", "--name", "gpu1")
        end = time.time() + 30
        while time.time() < end:
            try:
                r = httpx.get(self.url + "/api/v1/workers", headers={"Authorization": f"Bearer {self.admin}"}, timeout=2)
                if r.status_code == 200 and len([w for w in r.json()["workers"] if w["state"] == "alive"]) == 2:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the coordinator and its workers did not come up:\n" + self.logs())

    def start(self, *args):
        log = open(self.dir / f"{args[0]}-{len(self.procs)}.log", "w")
        self.procs.append(subprocess.Popen([self.binary, *args, "--cluster", str(self.cluster), "--log-level", "warning"],
                                           cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))

    def cli(self, *args):
        return subprocess.run([self.binary, *args, "--cluster", str(self.cluster)], cwd=ROOT, capture_output=True, text=True, timeout=60)

    def logs(self):
        return "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.dir.glob("*.log")))

    def stop(self):
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="session")
def coordinator(tmp_path_factory):
    c = Coordinator(tmp_path_factory.mktemp("agentflow"))
    yield c
    c.stop()


@pytest.fixture
def client(coordinator):
    import agentflow_client
    with agentflow_client.Client(coordinator.url, token=coordinator.admin) as c:
        yield c


@pytest.fixture
def workflows():
    return ROOT / "workflows"
