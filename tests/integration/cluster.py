"""A multi-node vltava cluster for the integration tests and the cluster checker.

    from cluster import Cluster
    with Cluster(tmp_path, n=3) as c:          # starts 3 `vltava server --config FILE`
        c.bootstrap                             # "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
        c.create_topic("t", partitions=6, replication_factor=3)
        leader = c.leader_of("t", 0)
        c.kill(leader)                          # SIGKILL (or sig=...)
        c.wait_leader_not("t", 0, leader)
        c.start_node(leader)                    # same ports, same data dir
        c.wait_isr("t", 0, 3)

Every node runs with `process.roles=broker,controller` (KRaft combined mode) and
the Kafka keys of the cluster spec: its own `node.id`, a PLAINTEXT (client) and a
CONTROLLER listener, `controller.quorum.voters` listing every node,
`broker.session.timeout.ms=3000`, `broker.heartbeat.interval.ms=500`,
`replica.lag.time.max.ms=5000`, internal topics with replication factor n.
`settings={...}` overrides keys on every node, `node_settings={id: {...}}` on one.
`controllers_only={3}` makes those nodes `process.roles=controller`: voters of the metadata
quorum with no client listener (they are left out of `bootstrap`, `healthy()`, and the
brokers every node must list).

Two network modes:

* loopback (default): every node on 127.0.0.1 with free ports. The ports must be fixed
  before any node starts (controller.quorum.voters lists them), so another process may
  take one first: a start that fails on EADDRINUSE is retried on new ports.
* netns (`netns=True`, root only, see `netns_available()`): node i runs in its own
  network namespace on 10.77.X.i (X: the first /24 of 10.77/16 unused on this host),
  attached with a veth pair to a bridge that holds 10.77.X.254 in the root
  namespace, where the test clients run. `isolate(i)` cuts node i from the other
  nodes only (the clients still reach it) and `heal()` undoes every cut. A cut
  between a and b installs, in each of the two namespaces, a permanent neighbour
  (ARP) entry that maps the other node's address to a MAC address nobody owns:
  packets are silently dropped on the bridge, as in a real partition (new
  connections hang in SYN, established ones stall and resume after the heal).
  No iptables/nft/tc needed. `isolate(i, method="blackhole")` uses blackhole
  routes instead (connects then fail at once with EINVAL).
  Names are unique per run (`vltava-<token>-n<i>` namespaces, `vlb<token>` bridge,
  `vlh<token><i>` veths); an owner file /tmp/vltava-netns/<token>.owner holds the pid
  of the creating process, and leftovers of dead owners are removed on setup.

Node views: `node_metadata(i)` sends a raw Metadata v7 request (no topic
auto-creation) to node i itself, so tests see each node's own view; the wait_*
helpers require every *healthy* node (running, not paused, not isolated) to agree.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import random
import re
import signal
import struct
import subprocess
import threading
import time
import uuid
from collections import Counter, namedtuple
from pathlib import Path

import kafka_wire as w
from conftest import free_port, vltava_bin

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# Starts retried when a node's fixed port was taken meanwhile (see Cluster.start).
PORT_ATTEMPTS = 3
ADDR_IN_USE = "Address already in use"

# Kafka error codes the cluster tests look at.
NONE = 0
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
NOT_ENOUGH_REPLICAS = 19
NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
NOT_CONTROLLER = 41

# The keys every node gets (the spec's example server.properties); `settings` and
# `node_settings` override them. {n} is the cluster size.
DEFAULT_SETTINGS = {
    "process.roles": "broker,controller",
    # no admin HTTP listener unless a test asks for one (its default port is shared)
    "admin.listeners": "",
    # no schema registry unless a test asks for one (its default port is shared)
    "schema.registry.listeners": "",
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "inter.broker.listener.name": "PLAINTEXT",
    "broker.session.timeout.ms": 3000,
    "broker.heartbeat.interval.ms": 500,
    "replica.lag.time.max.ms": 5000,
    "offsets.topic.replication.factor": "{n}",
    "transaction.state.log.replication.factor": "{n}",
    "default.replication.factor": "{n}",
    # Tests create their topics explicitly; a Metadata request naming a missing topic
    # must not create it with some default replication factor.
    "auto.create.topics.enable": False,
    # Consumer groups form at once instead of after 3 s.
    "group.initial.rebalance.delay.ms": 0,
}

# What a vltava without cluster mode logs about the quorum key (fail fast on it).
SINGLE_NODE_MARK = 'does not know yet key="controller.quorum.voters"'

PartState = namedtuple("PartState", "error leader epoch replicas isr offline")


class ClusterError(RuntimeError):
    pass


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# --------------------------------------------------------------------------
# raw requests to one node (its own view, no client-side routing)
# --------------------------------------------------------------------------

_corr = iter(range(1, 1 << 30))


def metadata_request_v7(correlation_id: int, topics: list[str] | None,
                        allow_auto_topic_creation: bool = False) -> bytes:
    body = w.int32(-1) if topics is None else w.array([w.string(t) for t in topics])
    body += w.int8(1 if allow_auto_topic_creation else 0)
    return w.request_header_v1(w.API_METADATA, 7, correlation_id) + body


def parse_metadata_v7(payload: bytes) -> dict:
    r = w.Reader(payload)
    out = {"correlation_id": r.int32(), "throttle_time_ms": r.int32()}
    brokers = {}
    for _ in range(r.int32()):
        node_id, host, port, _rack = r.int32(), r.string(), r.int32(), r.string()
        brokers[node_id] = (host, port)
    out["brokers"] = brokers
    out["cluster_id"] = r.string()
    out["controller_id"] = r.int32()
    topics = {}
    for _ in range(r.int32()):
        terr, name, internal = r.int16(), r.string(), r.int8()
        parts = {}
        for _ in range(r.int32()):
            perr, idx, leader, epoch = r.int16(), r.int32(), r.int32(), r.int32()
            replicas = [r.int32() for _ in range(r.int32())]
            isr = [r.int32() for _ in range(r.int32())]
            offline = [r.int32() for _ in range(r.int32())]
            parts[idx] = PartState(perr, leader, epoch, replicas, isr, offline)
        topics[name] = {"error": terr, "internal": bool(internal), "partitions": parts}
    out["topics"] = topics
    if r.remaining():
        raise ValueError(f"{r.remaining()} trailing bytes in Metadata v7 response")
    return out


def java_hash(s: str) -> int:
    """Java's String.hashCode (UTF-16 code units, 32-bit wrap-around)."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def group_partition(group: str, partitions: int = 50) -> int:
    """The __consumer_offsets partition of a group: abs(hashCode) % partitions (Kafka's
    Utils.abs maps MIN_VALUE to 0)."""
    h = java_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


# --------------------------------------------------------------------------
# reading partition logs on disk (replica divergence checks)
# --------------------------------------------------------------------------


def log_batches(partition_dir: Path) -> list[tuple[int, int, int]]:
    """(base_offset, last_offset, crc) of every complete batch in a partition directory's
    segments (Kafka's NNNNNNNNNNNNNNNNNNNN.log layout), in order. A torn or zero-filled
    tail ends the walk; the last batch of each segment (where a torn write can be) must
    also pass its CRC-32C."""
    out = []
    for seg in sorted(glob.glob(str(partition_dir / "*.log"))):
        try:
            with open(seg, "rb") as f:
                data = f.read()
        except FileNotFoundError:  # deleted (retention, truncation) while listing
            continue
        pos = 0
        found = []
        while pos + 12 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            if length < 49 or pos + 12 + length > len(data):
                break
            _epoch, magic, crc = struct.unpack_from(">ibI", data, pos + 12)
            if magic != 2:
                break
            (last_delta,) = struct.unpack_from(">i", data, pos + 23)
            found.append((pos, length, (base, base + last_delta, crc)))
            pos += 12 + length
        if found:
            p, length, (_b, _l, crc) = found[-1]
            if w.crc32c(data[p + 21:p + 12 + length]) != crc:
                found.pop()
        out.extend(b for _, _, b in found)
    return out


def compare_batches(a: list, b: list):
    """None if one list is a prefix of the other, else the index where they differ."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None


# --------------------------------------------------------------------------
# network namespaces
# --------------------------------------------------------------------------

NETNS_STATE_DIR = Path("/tmp/vltava-netns")
_NS_RE = re.compile(r"^vltava-([0-9a-f]{6})-n\d+$")
_LINK_RE = re.compile(r"^vl[bh]([0-9a-f]{6})\d*$")
_BOGUS_MAC = "02:00:00:00:00:fe"   # locally administered, owned by nobody


def _ip(*args, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise ClusterError(f"`ip {' '.join(args)}` failed ({p.returncode}): {p.stderr.strip()}")
    return p


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _ns_names() -> list[str]:
    p = _ip("netns", "list", check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def _link_names() -> list[str]:
    p = _ip("-o", "link", "show", check=False)
    out = []
    for line in p.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            out.append(parts[1].strip().split("@")[0])
    return out


def _destroy_token(token: str) -> None:
    for ns in _ns_names():
        m = _NS_RE.match(ns)
        if m and m.group(1) == token:
            p = _ip("netns", "pids", ns, check=False)
            for pid in p.stdout.split():
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
    for link in _link_names():
        m = _LINK_RE.match(link)
        if m and m.group(1) == token and link.startswith("vlh"):
            _ip("link", "del", link, check=False)
    for ns in _ns_names():
        m = _NS_RE.match(ns)
        if m and m.group(1) == token:
            _ip("netns", "del", ns, check=False)
    for link in _link_names():
        m = _LINK_RE.match(link)
        if m and m.group(1) == token:
            _ip("link", "del", link, check=False)
    with contextlib.suppress(FileNotFoundError):
        (NETNS_STATE_DIR / f"{token}.owner").unlink()


@contextlib.contextmanager
def _netns_lock():
    """An exclusive lock (flock) shared by every process on this host that sets up or
    cleans up namespaces (parallel pytest workers, the cluster checker)."""
    NETNS_STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(NETNS_STATE_DIR / "lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def cleanup_netns_leftovers() -> list[str]:
    """Remove namespaces, bridges and veths of earlier runs whose owner process is gone.
    Returns the tokens removed."""
    tokens = set()
    for ns in _ns_names():
        m = _NS_RE.match(ns)
        if m:
            tokens.add(m.group(1))
    for link in _link_names():
        m = _LINK_RE.match(link)
        if m:
            tokens.add(m.group(1))
    for f in glob.glob(str(NETNS_STATE_DIR / "*.owner")):
        tokens.add(Path(f).stem)
    removed = []
    for token in sorted(tokens):
        owner = NETNS_STATE_DIR / f"{token}.owner"
        try:
            pid = int(owner.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            pid = None
        if pid is not None and pid != os.getpid() and _pid_alive(pid):
            continue
        if pid == os.getpid():
            continue  # ours, torn down by its own Network object
        _destroy_token(token)
        removed.append(token)
    return removed


_NETNS_OK: tuple[bool, str] | None = None


def netns_available() -> tuple[bool, str]:
    """(True, "") if this process can build the netns topology, else (False, why).
    Tried once per process: a namespace, a bridge and a veth pair are created and removed."""
    global _NETNS_OK
    if _NETNS_OK is not None:
        return _NETNS_OK
    if os.geteuid() != 0:
        _NETNS_OK = (False, "not root")
        return _NETNS_OK
    try:
        subprocess.run(["ip", "-V"], capture_output=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        _NETNS_OK = (False, f"no usable `ip` command: {e}")
        return _NETNS_OK
    net = None
    try:
        net = NetnsNetwork(1)
        net.setup()
        _NETNS_OK = (True, "")
    except Exception as e:  # noqa: BLE001 - any failure means "not available"
        _NETNS_OK = (False, f"netns setup failed: {e}")
    finally:
        if net is not None:
            net.teardown()
    return _NETNS_OK


class NetnsNetwork:
    """n network namespaces on one bridge; the root namespace (the test client) is
    10.77.X.254 on the bridge."""

    def __init__(self, n: int):
        self.n = n
        self.token = uuid.uuid4().hex[:6]
        self.bridge = f"vlb{self.token}"
        self.subnet: int | None = None
        self.cuts: set[tuple[int, int, str]] = set()
        self.is_setup = False
        self.lock = threading.Lock()

    def ns(self, i: int) -> str:
        return f"vltava-{self.token}-n{i}"

    def host_veth(self, i: int) -> str:
        return f"vlh{self.token}{i}"

    def node_ip(self, i: int) -> str:
        return f"10.77.{self.subnet}.{i}"

    @property
    def client_ip(self) -> str:
        return f"10.77.{self.subnet}.254"

    def _pick_subnet(self) -> int:
        """A /24 of 10.77/16 no address or route on this host uses (10.77.0.0/24 when free;
        else a random free one, so that concurrent runs are unlikely to pick the same)."""
        used = _ip("-4", "-o", "addr", "show", check=False).stdout + \
            _ip("-4", "route", "show", "table", "all", check=False).stdout
        free = [x for x in range(255) if f"10.77.{x}." not in used]
        if not free:
            raise ClusterError("no free 10.77.X.0/24 subnet")
        return 0 if 0 in free else random.choice(free)

    def setup(self) -> None:
        # Under the lock: the leftovers of dead owners are removed while no other run is
        # half-way through writing its owner file, and the subnet is taken (the bridge
        # holds its address) before another run (a parallel pytest worker) picks one.
        with _netns_lock():
            cleanup_netns_leftovers()
            (NETNS_STATE_DIR / f"{self.token}.owner").write_text(f"{os.getpid()}\n")
            self.is_setup = True
            self.subnet = self._pick_subnet()
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.client_ip}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i in range(1, self.n + 1):
            ns, host, peer = self.ns(i), self.host_veth(i), f"vlc{self.token}{i}"
            _ip("netns", "add", ns)
            _ip("link", "add", host, "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "netns", ns)
            _ip("link", "set", host, "master", self.bridge, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", peer, "name", "eth0")
            _ip("-n", ns, "addr", "add", f"{self.node_ip(i)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def wrap(self, i: int, cmd: list[str]) -> list[str]:
        # `ip netns exec` setns()es and then execs the command: the Popen pid is the broker's.
        return ["ip", "netns", "exec", self.ns(i), *cmd]

    def _cut_one_way(self, a: int, b: int, method: str, add: bool) -> None:
        ns, ip = self.ns(a), self.node_ip(b)
        if method == "neigh":
            if add:
                _ip("-n", ns, "neigh", "replace", ip, "lladdr", _BOGUS_MAC, "nud", "permanent",
                    "dev", "eth0")
            else:
                _ip("-n", ns, "neigh", "del", ip, "dev", "eth0", check=False)
        elif method == "blackhole":
            _ip("-n", ns, "route", "add" if add else "del", "blackhole", f"{ip}/32", check=add)
        else:
            raise ValueError(f"unknown cut method {method!r}")

    def cut(self, a: int, b: int, method: str = "neigh") -> None:
        """Drop every packet between nodes a and b (both directions)."""
        with self.lock:
            for x, y in ((a, b), (b, a)):
                if (x, y, method) not in self.cuts:
                    self._cut_one_way(x, y, method, True)
                    self.cuts.add((x, y, method))

    def heal(self) -> None:
        with self.lock:
            for x, y, method in sorted(self.cuts):
                self._cut_one_way(x, y, method, False)
            self.cuts.clear()

    def teardown(self) -> None:
        if self.is_setup:
            _destroy_token(self.token)
            self.is_setup = False


# --------------------------------------------------------------------------
# nodes and the cluster
# --------------------------------------------------------------------------


class Node:
    """One `vltava server --config FILE` process, restartable on the same ports and data."""

    def __init__(self, cluster: "Cluster", node_id: int, workdir: Path, host: str,
                 client_port: int, controller_port: int):
        self.cluster = cluster
        self.node_id = node_id
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "server.properties"
        self.log_path = self.workdir / "node.log"
        self.host = host
        self.client_port = client_port
        self.controller_port = controller_port
        self.settings: dict = {}
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.exit_codes: list[int] = []
        self.paused = False
        self.broker = True   # False: process.roles=controller (no client listener)

    @property
    def faults_path(self) -> Path:
        """The node's fault-injection control file (see tests/faults/faultfs.c)."""
        return self.workdir / "faults"

    def inject(self, *rules: str) -> None:
        """Arm storage faults on this node (Cluster(faultfs=...) only); none clears them."""
        self.faults_path.write_text("".join(f"{r}\n" for r in rules))

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.client_port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def properties(self) -> dict:
        return dict(self.settings)

    def write_config(self) -> None:
        lines = [f"# vltava cluster node {self.node_id} (written by tests/integration/cluster.py)"]
        lines += [f"{k}={_fmt(v)}" for k, v in self.settings.items()]
        self.config_path.write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        cmd = [vltava_bin(), "server", "--config", str(self.config_path)]
        if self.cluster.net is not None:
            cmd = self.cluster.net.wrap(self.node_id, cmd)
        return cmd

    def spawn(self) -> None:
        binary = vltava_bin()
        if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
            raise ClusterError(
                f"vltava binary not found or not executable: {binary} "
                "(build it with `cargo build --release -p vltava-cli` or set VLTAVA_BIN)")
        if self.is_running():
            raise ClusterError(f"node {self.node_id} already running")
        self.write_config()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as logf:
            logf.write(f"\n===== {time.strftime('%H:%M:%S')} start #{self.starts}: "
                       f"{' '.join(self.command())}\n".encode())
            logf.flush()
            env = dict(os.environ)
            env.setdefault("RUST_BACKTRACE", "1")
            if self.cluster.faultfs is not None:
                env["LD_PRELOAD"] = str(self.cluster.faultfs)
                env["VLTAVA_FAULTS"] = str(self.faults_path)
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf, env=env, cwd=str(self.workdir))
        self.paused = False

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.is_running():
            self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        self.proc.wait(timeout=timeout)
        self.exit_codes.append(self.proc.returncode)
        self.paused = False
        return self.proc.returncode

    def mark(self, text: str) -> None:
        """Write a marker line into the node's log (which the broker appends to too)."""
        with contextlib.suppress(OSError), open(self.log_path, "ab") as f:
            f.write(f"===== {time.strftime('%H:%M:%S')} {text}\n".encode())

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 80) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    def partition_dir(self, topic: str, partition: int) -> Path:
        return self.data_dir / f"{topic}-{partition}"

    def __repr__(self) -> str:
        state = "paused" if self.paused else ("running" if self.is_running() else "down")
        return f"<Node {self.node_id} {self.bootstrap} {state}>"


class Cluster:
    def __init__(self, workdir, n: int = 3, settings: dict | None = None,
                 node_settings: dict | None = None, netns: bool = False,
                 startup_timeout: float = STARTUP_TIMEOUT, faultfs: Path | None = None,
                 controllers_only=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.n = n
        self.controllers_only = set(controllers_only)
        self.startup_timeout = startup_timeout
        self.settings = dict(settings or {})
        self.node_settings = {int(k): dict(v) for k, v in (node_settings or {}).items()}
        self.net: NetnsNetwork | None = NetnsNetwork(n) if netns else None
        # the storage fault injector preloaded into every node (Node.inject arms it)
        self.faultfs = faultfs
        self.nodes: dict[int, Node] = {}
        self.isolated: set[int] = set()
        self.events: list[dict] = []    # what was done to which node, when (monotonic)
        self.closed = False

    # -- layout ------------------------------------------------------------

    def _layout(self) -> None:
        if self.net is not None:
            self.net.setup()
            addrs = {i: (self.net.node_ip(i), 9092, 9093) for i in range(1, self.n + 1)}
        else:
            ports: set[int] = set()
            while len(ports) < 2 * self.n:
                ports.add(free_port())
            ports_l = sorted(ports)
            addrs = {i: ("127.0.0.1", ports_l[2 * (i - 1)], ports_l[2 * (i - 1) + 1])
                     for i in range(1, self.n + 1)}
        voters = ",".join(f"{i}@{h}:{cp}" for i, (h, _p, cp) in addrs.items())
        for i, (host, port, cport) in addrs.items():
            node = Node(self, i, self.workdir / f"node{i}", host, port, cport)
            s = {k: (v.format(n=self.n) if isinstance(v, str) else v)
                 for k, v in DEFAULT_SETTINGS.items()}
            s.update({
                "node.id": i,
                "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
                "advertised.listeners": f"PLAINTEXT://{host}:{port}",
                "controller.quorum.voters": voters,
                "log.dirs": str(node.data_dir),
            })
            if i in self.controllers_only:
                node.broker = False
                s["process.roles"] = "controller"
                s["listeners"] = f"CONTROLLER://{host}:{cport}"
                del s["advertised.listeners"]
            s.update(self.settings)
            s.update(self.node_settings.get(i, {}))
            node.settings = s
            self.nodes[i] = node

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> "Cluster":
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._layout()
                for node in self.nodes.values():
                    node.spawn()
                self.wait_ready(timeout=self.startup_timeout)
                return self
            except BaseException:
                in_use = [i for i, n in self.nodes.items() if ADDR_IN_USE in n.log()]
                if self.net is not None or not in_use or attempt == PORT_ATTEMPTS:
                    self.close()
                    raise
                # a port picked by free_port() was taken before the node bound it
                self._kill_all()
                for i, node in self.nodes.items():
                    node.workdir.rename(node.workdir.with_name(
                        f"{node.workdir.name}.addr-in-use-{attempt}"))
                self.nodes = {}
        raise AssertionError("unreachable")

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._kill_all()
        if self.net is not None:
            self.net.teardown()

    def _kill_all(self) -> None:
        for node in self.nodes.values():
            if node.proc is not None and node.proc.poll() is None:
                with contextlib.suppress(OSError):
                    node.proc.send_signal(signal.SIGCONT)
                    node.proc.kill()
        for node in self.nodes.values():
            if node.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.proc.wait(timeout=10)

    def node(self, node_id: int) -> Node:
        return self.nodes[node_id]

    @property
    def ids(self) -> list[int]:
        return sorted(self.nodes)

    def running(self) -> list[int]:
        return [i for i in self.ids if self.nodes[i].is_running()]

    @property
    def broker_ids(self) -> list[int]:
        """The nodes that serve clients (all but the controllers_only ones)."""
        return [i for i in self.ids if self.nodes[i].broker]

    def healthy(self) -> list[int]:
        """Running brokers, not paused, not isolated: nodes whose view is current."""
        return [i for i in self.running() if self.nodes[i].broker and not self.nodes[i].paused
                and i not in self.isolated]

    def bootstrap_of(self, ids) -> str:
        return ",".join(self.nodes[i].bootstrap for i in ids)

    @property
    def bootstrap(self) -> str:
        """Every broker's client listener (clients skip the dead ones)."""
        return self.bootstrap_of(self.broker_ids)

    def _event(self, action: str, node_id: int, **kw) -> dict:
        ev = {"t": time.monotonic(), "wall": time.time(), "action": action, "node": node_id, **kw}
        self.events.append(ev)
        if node_id in self.nodes:
            self.nodes[node_id].mark(f"test harness: {action} {kw if kw else ''}")
        return ev

    def kill(self, node_id: int, sig: int = signal.SIGKILL, timeout: float = STOP_TIMEOUT):
        """Send `sig`; for SIGKILL/SIGTERM/SIGINT wait for the exit and return its code."""
        node = self.nodes[node_id]
        if not node.is_running():
            raise ClusterError(f"node {node_id} is not running")
        self._event(f"signal {signal.Signals(sig).name}", node_id)
        if node.paused and sig not in (signal.SIGKILL, signal.SIGCONT):
            node.proc.send_signal(signal.SIGCONT)
            node.paused = False
        node.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            try:
                return node.wait_exit(timeout)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.wait_exit(10)
                raise AssertionError(f"node {node_id} did not exit within {timeout}s of "
                                     f"{signal.Signals(sig).name}\n{self.log_tails([node_id])}")
        return None

    def stop(self, node_id: int, timeout: float = STOP_TIMEOUT) -> int:
        """Controlled shutdown: SIGTERM, wait, and require exit code 0."""
        code = self.kill(node_id, signal.SIGTERM, timeout)
        if code != 0:
            raise AssertionError(f"node {node_id} exited with code {code} after SIGTERM\n"
                                 f"{self.log_tails([node_id])}")
        return code

    def start_node(self, node_id: int, wait: bool = True, timeout: float | None = None) -> Node:
        node = self.nodes[node_id]
        self._event("start", node_id)
        node.spawn()
        if wait:
            self.wait_ready(timeout=timeout or self.startup_timeout)
        return node

    def restart(self, node_id: int, wait: bool = True, timeout: float | None = None) -> Node:
        if self.nodes[node_id].is_running():
            self.stop(node_id)
        return self.start_node(node_id, wait=wait, timeout=timeout)

    def pause(self, node_id: int) -> None:
        node = self.nodes[node_id]
        self._event("pause", node_id)
        node.proc.send_signal(signal.SIGSTOP)
        node.paused = True

    def resume(self, node_id: int) -> None:
        node = self.nodes[node_id]
        node.proc.send_signal(signal.SIGCONT)
        node.paused = False
        self._event("resume", node_id)

    # -- network partitions (netns mode) -----------------------------------

    def _need_net(self) -> NetnsNetwork:
        if self.net is None:
            raise ClusterError("network partitions need Cluster(netns=True)")
        return self.net

    def isolate(self, node_id: int, method: str = "neigh") -> None:
        """Cut node_id from every other node; clients still reach every node."""
        net = self._need_net()
        self._event("isolate", node_id, method=method)
        for other in self.ids:
            if other != node_id:
                net.cut(node_id, other, method)
        self.isolated.add(node_id)

    def cut(self, a: int, b: int, method: str = "neigh") -> None:
        self._need_net().cut(a, b, method)
        self._event("cut", a, peer=b, method=method)

    def heal(self) -> None:
        net = self._need_net()
        net.heal()
        for i in sorted(self.isolated):
            self._event("heal", i)
        self.isolated.clear()

    # -- raw per-node requests ---------------------------------------------

    def node_request(self, node_id: int, payload: bytes, timeout: float = 5.0) -> bytes:
        node = self.nodes[node_id]
        with w.connect(node.client_port, node.host, timeout=timeout) as s:
            return w.roundtrip(s, payload)

    def node_metadata(self, node_id: int, topics: list[str] | None = (), timeout: float = 5.0) -> dict:
        """Node `node_id`'s own Metadata (v7). topics=() asks for brokers only, None for all."""
        t = None if topics is None else list(topics)
        return parse_metadata_v7(self.node_request(node_id, metadata_request_v7(next(_corr), t),
                                                   timeout))

    def node_describe_cluster(self, node_id: int, timeout: float = 5.0) -> dict:
        return w.parse_describe_cluster_v0(
            self.node_request(node_id, w.describe_cluster_request_v0(next(_corr)), timeout))

    def views(self, topic: str, nodes=None, timeout: float = 3.0) -> dict:
        """{node_id: {partition: PartState}} from each node's own Metadata (healthy nodes by
        default). A node that fails to answer maps to the exception."""
        out = {}
        for i in (self.healthy() if nodes is None else nodes):
            try:
                md = self.node_metadata(i, [topic], timeout)
                t = md["topics"].get(topic)
                out[i] = t["partitions"] if t is not None and t["error"] == 0 else {}
            except Exception as e:  # noqa: BLE001 - reported to the caller
                out[i] = e
        return out

    def produce_raw(self, node_id: int, topic: str, partition: int, values, acks: int = -1,
                    timeout_ms: int = 10000, socket_timeout: float | None = None) -> dict:
        """One Produce v7 request straight to `node_id` (no client retries or routing).
        Returns the partition's response dict, or {"error_code": None, "exception": e} when
        no response arrived (timeout, connection closed)."""
        batch = w.record_batch([(None, v if isinstance(v, bytes) else v.encode()) for v in values])
        req = w.produce_request(next(_corr), topic, partition, batch, api_version=7, acks=acks,
                                timeout_ms=timeout_ms)
        st = socket_timeout if socket_timeout is not None else timeout_ms / 1000 + 5
        try:
            _, parts, _ = w.parse_produce_response(self.node_request(node_id, req, st), 7)
            return parts[(topic, partition)]
        except (OSError, w.ConnectionClosed) as e:
            return {"error_code": None, "exception": e}

    def find_coordinator(self, group: str, timeout: float = 30.0, key_type: int = 0) -> int:
        """The node id FindCoordinator names, asked to healthy nodes until one answers."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            for i in self.healthy():
                try:
                    r = w.parse_find_coordinator_v1(self.node_request(
                        i, w.find_coordinator_request_v1(next(_corr), group, key_type)))
                    last = (i, r)
                    if r["error_code"] == 0 and r["node_id"] >= 0:
                        return r["node_id"]
                except Exception as e:  # noqa: BLE001
                    last = (i, e)
            if time.monotonic() > deadline:
                raise AssertionError(f"no coordinator for {group!r} within {timeout}s: {last}")
            time.sleep(0.2)

    # -- readiness and waits -----------------------------------------------

    def wait_ready(self, timeout: float | None = None, expect: set | None = None) -> None:
        """Until every healthy node lists exactly the running nodes (`expect`) as brokers,
        at their advertised addresses, and an AdminClient on the bootstrap agrees."""
        timeout = timeout or self.startup_timeout
        deadline = time.monotonic() + timeout
        last: dict = {}
        want = set(expect) if expect is not None else {
            i for i in self.running() if self.nodes[i].broker}
        processes = set(self.running()) | want
        while True:
            for i in sorted(processes):
                node = self.nodes[i]
                if SINGLE_NODE_MARK in node.log():
                    raise ClusterError(
                        f"node {i}: this vltava binary ({vltava_bin()}) has no cluster mode: it "
                        f"ignores controller.quorum.voters\n{self.log_tails([i], 20)}")
                if node.proc is None or node.proc.poll() is not None:
                    code = None if node.proc is None else node.proc.returncode
                    raise ClusterError(f"node {i} exited (code {code}) while waiting for the "
                                       f"cluster to form\n{self.log_tails([i])}")
            ok = True
            for i in self.healthy():
                try:
                    md = self.node_metadata(i, (), timeout=3.0)
                    brokers = md["brokers"]
                    last[i] = sorted(brokers.items())
                    if set(brokers) != want or any(
                            brokers[b] != (self.nodes[b].host, self.nodes[b].client_port)
                            for b in want):
                        ok = False
                except Exception as e:  # noqa: BLE001
                    last[i] = repr(e)
                    ok = False
            if ok:
                try:
                    md = self.admin().list_topics(timeout=5)
                    last["admin"] = sorted(md.brokers)
                    ok = set(md.brokers) == want
                except Exception as e:  # noqa: BLE001
                    last["admin"] = repr(e)
                    ok = False
            if ok:
                return
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"cluster not ready within {timeout:.0f}s: expected brokers {sorted(want)} "
                    f"listed by every healthy node {self.healthy()}; last answers: {last}\n"
                    f"{self.log_tails()}")
            time.sleep(0.2)

    def wait_until(self, cond, timeout: float, what: str, interval: float = 0.1):
        """Poll cond() (returning a truthy value when done) until the deadline."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                last = cond()
                if last:
                    return last
            except Exception as e:  # noqa: BLE001 - retried until the deadline
                last = e
            if time.monotonic() > deadline:
                raise AssertionError(f"timeout after {timeout}s waiting for {what}; last: {last!r}\n"
                                     f"{self.log_tails()}")
            time.sleep(interval)

    def _agreed(self, topic: str, nodes=None, timeout: float = 3.0):
        """{partition: PartState} if every asked node answered with the same
        (leader, replicas, isr) for every partition, else None."""
        views = self.views(topic, nodes, timeout)
        if not views or any(isinstance(v, Exception) or not v for v in views.values()):
            return None
        first = next(iter(views.values()))
        for v in views.values():
            if set(v) != set(first):
                return None
            for p, st in v.items():
                f = first[p]
                if (st.leader, sorted(st.replicas), sorted(st.isr)) != (
                        f.leader, sorted(f.replicas), sorted(f.isr)):
                    return None
        return first

    def partition_state(self, topic: str, partition: int, nodes=None) -> PartState | None:
        """The partition as the asked nodes (healthy ones by default) see it: the view most
        of them report (by leader, then the first such answer)."""
        views = self.views(topic, nodes)
        states = [v[partition] for v in views.values()
                  if not isinstance(v, Exception) and partition in v]
        if not states:
            return None
        leader = Counter(s.leader for s in states).most_common(1)[0][0]
        return next(s for s in states if s.leader == leader)

    def leader_of(self, topic: str, partition: int) -> int:
        st = self.partition_state(topic, partition)
        return -1 if st is None else st.leader

    def isr_of(self, topic: str, partition: int) -> list[int]:
        st = self.partition_state(topic, partition)
        return [] if st is None else sorted(st.isr)

    def replicas_of(self, topic: str, partition: int) -> list[int]:
        st = self.partition_state(topic, partition)
        return [] if st is None else sorted(st.replicas)

    def leaders(self, topic: str) -> dict[int, int]:
        """{partition: leader} as the healthy nodes agree (waits briefly for agreement)."""
        st = self.wait_until(lambda: self._agreed(topic), 15, f"agreed metadata of {topic}")
        return {p: s.leader for p, s in st.items()}

    def partitions_led_by(self, topic: str, node_id: int) -> list[int]:
        views = self.views(topic)
        led = set()
        for v in views.values():
            if not isinstance(v, Exception):
                led |= {p for p, s in v.items() if s.leader == node_id}
        return sorted(led)

    def wait_isr(self, topic: str, partition: int | None, size: int, timeout: float = 30.0,
                 nodes=None) -> dict:
        """Until every healthy node reports, for `partition` (None: all partitions), a live
        leader inside an ISR of exactly `size` members."""
        def cond():
            st = self._agreed(topic, nodes)
            if st is None:
                return None
            parts = [partition] if partition is not None else list(st)
            if partition is not None and partition not in st:
                return None
            for p in parts:
                s = st[p]
                if s.error != 0 or s.leader < 0 or len(set(s.isr)) != size or s.leader not in s.isr:
                    return None
            return st
        return self.wait_until(cond, timeout, f"ISR of {topic}[{partition}] to have {size} members "
                               f"on nodes {nodes or self.healthy()}")

    def wait_leader_not(self, topic: str, partition: int, node_id: int, timeout: float = 15.0,
                        nodes=None) -> int:
        """Until every healthy node other than node_id names a live leader other than
        node_id. Returns the new leader."""
        asked = [i for i in (nodes or self.healthy()) if i != node_id]

        def cond():
            views = self.views(topic, asked)
            leaders = set()
            for v in views.values():
                if isinstance(v, Exception) or partition not in v:
                    return None
                leaders.add(v[partition].leader)
            if len(leaders) == 1 and node_id not in leaders and -1 not in leaders:
                return leaders.pop()
            return None
        return self.wait_until(cond, timeout, f"{topic}[{partition}] led by a node other than "
                               f"{node_id} (asking {asked})", interval=0.05)

    def wait_leader(self, topic: str, partition: int, timeout: float = 15.0) -> int:
        def cond():
            st = self._agreed(topic)
            return st[partition].leader if st and partition in st and st[partition].leader >= 0 \
                else None
        return self.wait_until(cond, timeout, f"a leader for {topic}[{partition}]")

    # -- clients -----------------------------------------------------------

    def admin(self, **conf):
        from confluent_kafka.admin import AdminClient
        c = {"bootstrap.servers": self.bootstrap_of(self.healthy() or self.broker_ids),
             "allow.auto.create.topics": False}
        c.update(conf)
        return AdminClient(c)

    def describe_cluster(self, timeout: float = 10.0):
        """confluent-kafka's DescribeClusterResult (cluster_id, controller, nodes)."""
        a = self.admin()  # must outlive the future: a destroyed handle fails it
        return a.describe_cluster(request_timeout=timeout).result(timeout + 5)

    def controller_id(self, timeout: float = 10.0) -> int:
        ctl = self.describe_cluster(timeout).controller
        return -1 if ctl is None else ctl.id

    def wait_controller(self, timeout: float = 30.0, not_in=()) -> int:
        """Until every healthy node's Metadata names the same live controller (not in
        `not_in`). Returns it."""
        def cond():
            ids = set()
            for i in self.healthy():
                ids.add(self.node_metadata(i, (), timeout=3.0)["controller_id"])
            if len(ids) == 1:
                c = ids.pop()
                live = [i for i in self.running() if not self.nodes[i].paused
                        and i not in self.isolated]
                if c in live and c not in not_in:
                    return c
            return None
        return self.wait_until(cond, timeout, f"agreed controller (not {list(not_in)})", 0.2)

    def create_topic(self, name: str, partitions: int = 1, replication_factor: int = 3,
                     config: dict | None = None, timeout: float = 30.0, wait_isr: bool = True):
        from confluent_kafka.admin import NewTopic
        a = self.admin()
        fs = a.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                      config=config or {})], request_timeout=timeout)
        fs[name].result(timeout + 5)
        del a
        if wait_isr:
            self.wait_until(lambda: (st := self._agreed(name)) is not None and len(st) == partitions,
                            timeout, f"topic {name} with {partitions} partitions on every node")
            self.wait_isr(name, None, replication_factor, timeout)
            self.wait_leaders_serving(name, timeout)

    def wait_leaders_serving(self, topic: str, timeout: float = 30.0) -> dict[int, int]:
        """Until the leader the healthy nodes agree on for each partition of `topic` serves it
        (answers ListOffsets without an error). A node's Metadata can name it leader a moment
        before it has taken the leadership, as in Kafka (the metadata cache is updated before
        the replica manager), and a request sent to it meanwhile gets NOT_LEADER_OR_FOLLOWER:
        a client retries it, a test's single raw request would not. Returns {partition: leader}."""
        def cond():
            st = self._agreed(topic)
            if not st or any(s.leader < 0 for s in st.values()):
                return None
            for p, s in st.items():
                _, res = w.parse_list_offsets_v2(self.node_request(
                    s.leader, w.list_offsets_request_v2(next(_corr), topic, [(p, -1)])))
                if res[(topic, p)][0] != NONE:
                    return None
            return {p: s.leader for p, s in st.items()}
        return self.wait_until(cond, timeout, f"the leaders of {topic} to serve it")

    # -- replica logs on disk ----------------------------------------------

    def replica_batches(self, node_id: int, topic: str, partition: int) -> list:
        d = self.nodes[node_id].partition_dir(topic, partition)
        if not d.is_dir():
            raise AssertionError(f"node {node_id} has no directory {d} for {topic}[{partition}] "
                                 f"(has: {sorted(p.name for p in d.parent.glob('*'))[:40]})")
        return log_batches(d)

    def check_replicas(self, topic: str, partition: int, replicas=None) -> dict:
        """Compare the batches (base offset, last offset, CRC) of every replica's log.
        {"identical": bool, "divergent": [(a, b, index, batch_a, batch_b)], "lengths": {}}"""
        replicas = replicas or self.replicas_of(topic, partition)
        logs = {i: self.replica_batches(i, topic, partition) for i in replicas}
        out = {"identical": True, "divergent": [], "lengths": {i: len(v) for i, v in logs.items()},
               "ends": {i: (v[-1][1] + 1 if v else 0) for i, v in logs.items()}}
        ids = sorted(logs)
        for a in ids:
            for b in ids:
                if a >= b:
                    continue
                if logs[a] != logs[b]:
                    out["identical"] = False
                idx = compare_batches(logs[a], logs[b])
                if idx is not None:
                    out["divergent"].append((a, b, idx, logs[a][idx], logs[b][idx]))
        return out

    def wait_replicas_identical(self, topic: str, partitions, timeout: float = 30.0) -> dict:
        """Until every replica of each partition holds the same batches. Fails at once on a
        divergence that persists (a replica that is not a prefix of another after the
        timeout), and on replicas that never catch up."""
        deadline = time.monotonic() + timeout
        results = {}
        for p in partitions:
            replicas = self.replicas_of(topic, p)
            while True:
                res = self.check_replicas(topic, p, replicas)
                results[p] = res
                if res["identical"]:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"replicas of {topic}[{p}] differ after {timeout}s: "
                        f"{'DIVERGENT ' + repr(res['divergent']) if res['divergent'] else 'lagging'}"
                        f"; batches per replica {res['lengths']}, log ends {res['ends']}")
                time.sleep(0.3)
        return results

    # -- logs ----------------------------------------------------------------

    def log_tails(self, ids=None, n: int = 80) -> str:
        parts = []
        for i in (ids or self.ids):
            node = self.nodes.get(i)
            if node is None:
                continue
            parts.append(f"--- log of {node!r} ({node.log_path}), last {n} lines ---\n"
                         f"{node.log_tail(n)}")
        return "\n".join(parts)

    def summary(self) -> str:
        return ", ".join(f"{n!r}{' isolated' if i in self.isolated else ''}"
                         for i, n in sorted(self.nodes.items()))

    def __repr__(self) -> str:
        return f"<Cluster {self.summary()}>"
