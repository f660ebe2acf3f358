"""Real Redis topologies for tests: a 3-master + 3-replica Redis Cluster and a Sentinel.

Started from ``redis-server`` binaries on free local ports, in a temporary directory, and always
torn down (``close`` kills every process it started, whatever state the test left them in).
Every wait is a poll with a deadline.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from relay.embedded import redis_server_binary


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """``count`` ports whose cluster-bus twin (port + 10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(20000, 30000)
        if port not in ports and _port_free(port) and _port_free(port + 10000):
            ports.append(port)
    return ports


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]
    command: list[str]

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def info(self, section: str) -> dict[str, object]:
        with self.client() as client:
            return dict(client.info(section))

    def answers(self) -> bool:
        with self.client() as client:
            return client.ping() is True

    def cluster_ok(self) -> bool:
        with self.client() as client:
            return bool(client.cluster("info")["cluster_state"] == "ok")

    def alive(self) -> bool:
        return self.process.poll() is None


class Processes:
    """redis-server processes in one temporary directory; ``close`` ends every one of them."""

    def __init__(self, prefix: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.root = Path(self._tmp.name)
        self.nodes: list[Node] = []

    def spawn(self, port: int, *args: str) -> Node:
        workdir = self.root / str(port)
        workdir.mkdir(exist_ok=True)
        command = [
            redis_server_binary(), *args,
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
            "--save", "", "--appendonly", "no", "--logfile", str(workdir / "redis.log"),
        ]  # fmt: skip
        node = Node(port, _launch(command), command)
        self.nodes.append(node)
        wait_for(node.answers, 10, f"redis-server on port {port}")
        return node

    def relaunch(self, node: Node) -> None:
        """Start a node that was killed again, on its port, directory and configuration."""
        node.process = _launch(node.command)
        wait_for(node.answers, 10, f"redis-server on port {node.port}")

    def close(self) -> None:
        for node in self.nodes:
            if node.alive():
                with_signal(node, signal.SIGCONT)  # a paused process cannot die of SIGKILL late
                node.process.kill()
            node.process.wait(5)
        self._tmp.cleanup()


def _launch(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def with_signal(node: Node, sig: signal.Signals) -> None:
    if node.alive():
        os.kill(node.process.pid, sig)


class LocalCluster(Processes):
    """Three masters, each with one replica; any replica may take over (validity factor 0)."""

    def __init__(self, masters: int = 3, node_timeout_ms: int = 1000) -> None:
        super().__init__("relay-test-cluster-")
        self.masters = masters
        self.node_timeout_ms = node_timeout_ms

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> LocalCluster:
        for port in cluster_ports(self.masters * 2):
            self.spawn(
                port,
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--cluster-replica-validity-factor", "0",
                "--repl-diskless-sync", "yes",
                "--repl-diskless-sync-delay", "0",
            )  # fmt: skip
        self._form()
        wait_for(self._healthy, 20, "the cluster to be ok with every replica in sync")
        return self

    def _form(self) -> None:
        """What `redis-cli --cluster create` does, without needing redis-cli: slots split evenly
        over the masters, every node introduced, each replica attached to its master."""
        masters, replicas = self.nodes[: self.masters], self.nodes[self.masters :]
        bounds = [16384 * i // self.masters for i in range(self.masters + 1)]
        ids = []
        for i, node in enumerate(masters):
            with node.client() as client:
                client.execute_command("CLUSTER", "ADDSLOTS", *range(bounds[i], bounds[i + 1]))
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
                ids.append(client.execute_command("CLUSTER", "MYID"))
        with self.nodes[0].client() as client:
            for node in self.nodes[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        wait_for(lambda: all(self._knows(n, len(self.nodes)) for n in self.nodes), 20, "the nodes to meet")
        for master_id, replica in zip(ids, replicas, strict=True):
            with replica.client() as client:
                client.execute_command("CLUSTER", "REPLICATE", master_id)

    def _knows(self, node: Node, count: int) -> bool:
        """``node`` knows ``count`` nodes, none of them still in the handshake."""
        with node.client() as client:
            known = client.cluster("nodes")
        return len(known) >= count and all("handshake" not in peer["flags"] for peer in known.values())

    def _healthy(self) -> bool:
        for node in self.nodes:
            if node.info("cluster").get("cluster_enabled") != 1:
                return False
            if not node.cluster_ok():
                return False
        return all(r.info("replication").get("master_link_status") == "up" for r in self.replicas())

    def role(self, node: Node) -> str:
        return str(node.info("replication")["role"])

    def primaries(self) -> list[Node]:
        return [n for n in self.nodes if n.alive() and self.role(n) == "master"]

    def replicas(self) -> list[Node]:
        return [n for n in self.nodes if n.alive() and self.role(n) == "slave"]

    def replica_of(self, master: Node) -> Node:
        for node in self.replicas():
            if node.info("replication").get("master_port") == master.port:
                return node
        raise LookupError(f"no replica of port {master.port}")

    def node_for_key(self, key: str) -> Node:
        """The primary that holds ``key`` now."""
        with self.primaries()[0].client() as client:
            slot = int(client.cluster("keyslot", key))
            ranges = client.execute_command("CLUSTER SLOTS")
        port = next(int(r[2][1]) for r in ranges if int(r[0]) <= slot <= int(r[1]))
        return next(n for n in self.nodes if n.port == port)

    def fail_over_by_crash(self, master: Node, timeout: float = 20) -> Node:
        """SIGKILL ``master``; return its replica once promoted and the cluster is ok again."""
        replica = self.replica_of(master)
        master.process.kill()
        master.process.wait(5)
        wait_for(lambda: self.role(replica) == "master", timeout, "the replica to be promoted")
        survivors = [n for n in self.nodes if n.alive()]
        wait_for(
            lambda: all(n.cluster_ok() for n in survivors),
            timeout,
            "the cluster to be ok after the failover",
        )
        return replica

    def rejoin(self, node: Node, timeout: float = 20) -> None:
        """Relaunch a crashed former master; it comes back as a replica, in sync."""
        self.relaunch(node)
        wait_for(
            lambda: self.role(node) == "slave" and node.info("replication")["master_link_status"] == "up",
            timeout,
            "the old master to rejoin as a replica",
        )


class LocalSentinel(Processes):
    """One master and one Sentinel watching it as ``mymaster``."""

    service = "mymaster"

    def __init__(self) -> None:
        super().__init__("relay-test-sentinel-")

    def start(self) -> LocalSentinel:
        master_port, sentinel_port = cluster_ports(2)
        self.master = self.spawn(master_port)
        conf = self.root / "sentinel.conf"
        conf.write_text(
            f"port {sentinel_port}\nbind 127.0.0.1\ndir {self.root}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {master_port} 1\n"
        )
        command = [redis_server_binary(), str(conf), "--sentinel"]
        self.sentinel = Node(sentinel_port, _launch(command), command)
        self.nodes.append(self.sentinel)
        wait_for(self._knows_master, 10, "the sentinel to know its master")
        return self

    def _knows_master(self) -> bool:
        with self.sentinel.client() as client:
            address = client.execute_command("SENTINEL", "get-master-addr-by-name", self.service)
        return bool(address) and int(address[1]) == self.master.port

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{self.service}"
