"""A real SLURM cluster on this machine, for the tests that submit through the SLURM executor: one node
on localhost, or two nodes in network namespaces.

Debian's slurm-wlm (slurmctld, slurmd, client commands) and munge are installed with apt when missing
(only as root: a container without them is what CI runs in). Everything the daemons write (munge key
and socket, state, spool, logs, pid files) lives in one temporary directory; the daemons listen on free
ports and use their own munge socket, so a system SLURM or munge on the machine is neither used nor
disturbed. Clients reach this cluster through SLURM_CONF in the environment `SlurmCluster.env()` gives,
and inside jobs through /etc/slurm/slurm.conf, a link to this cluster's configuration while it runs: the
SLURM executor's job step drops every SLURM_* variable (SLURM_CONF too) before it runs a rule, so an
`srun` in a rule reads the default path, as it does on a real cluster. Hence one test cluster per machine
at a time (a lock file serialises test sessions), and none where the machine has a slurm.conf of its own.

The configuration is the smallest that behaves like a real cluster: one node, `localhost`, with the
CPUs and memory `slurmd -C` detects; cons_tres scheduling; no cgroups (proctrack/linuxproc,
task/none: containers have none to give); no accounting, so `sacct` does not work and job status must
come from `squeue` (MinJobAge keeps finished jobs visible to it for 30 minutes, so a test can still look
up the jobs of a workflow run that took several minutes).

The two-node cluster (`start_cluster(two_nodes=True)`) runs each slurmd in network, UTS and mount
namespaces of its own: its own address on a bridge, its own hostname (`cn1`, `cn2`) and an /etc/hosts
that names both nodes, so a multi-node job really talks over the network between its nodes, as a
torchrun rendezvous does on a real cluster. The controller listens on the bridge's host address. Both
nodes declare the whole machine's CPUs and memory: they share them. It needs root with the capabilities
to create namespaces and links (ClusterUnavailable otherwise) and iproute2.
"""
from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
APT_PACKAGES = ("slurm-wlm", "munge")
REPO = Path(__file__).resolve().parents[2]
SLURM_PROFILE = REPO / "profiles" / "slurm"
# CPU-only overrides for tests on this cluster: no account or partition, status from squeue.
TEST_PROFILE = Path(__file__).resolve().parent / "profile"
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
ROOT_PREFIX = "/tmp/culturalign-slurm-"
LOCK_FILE = Path("/tmp/culturalign-slurm.lock")
LOCAL_NODE = {"localhost": "127.0.0.1"}
# The two-node network: a bridge (link names fit in 15 characters) on the first of these private /24
# networks that the machine does not use itself; the controller at .1, the nodes at .11 and .12.
BRIDGE = "culturalign0"
NETNS_NAMES = ("cn1", "cn2")
SUBNETS = ("10.201.0.0/24", "172.31.201.0/24", "192.168.201.0/24")
NETNS_TOOLS = {"ip": "iproute2", "unshare": "util-linux", "nsenter": "util-linux"}


class ClusterUnavailable(Exception):
    """This machine cannot host the test cluster (a reason to skip, not a failure)."""


def _sbin(name: str) -> str | None:
    """Daemons live in /usr/sbin, which a non-login PATH may lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def missing_commands(netns: bool = False) -> list[str]:
    commands = [*DAEMONS, "sbatch", "squeue", "sinfo", *(NETNS_TOOLS if netns else ())]
    return [c for c in commands if _sbin(c) is None]


def ensure_installed(timeout: float = 600, *, netns: bool = False) -> str | None:
    """Install slurm-wlm and munge (and iproute2 for `netns`) with apt when missing. Returns why that is
    impossible, or None."""
    missing = missing_commands(netns)
    if not missing:
        return None
    if os.geteuid() != 0:
        return f"SLURM/munge not installed ({', '.join(missing)} missing) and not root to apt-get install them"
    if not shutil.which("apt-get"):
        return f"SLURM/munge not installed ({', '.join(missing)} missing) and no apt-get to install them"
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    packages = [*APT_PACKAGES, *(sorted(set(NETNS_TOOLS.values())) if netns else ())]
    steps = (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *packages])
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(cmd)}` did not finish in {timeout:.0f} s (no package mirror reachable?)"
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed (rc {proc.returncode}): {proc.stderr.strip()[-800:]}"
    still = missing_commands(netns)
    return f"installed {' '.join(packages)} but still missing: {', '.join(still)}" if still else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def detect_node() -> dict[str, int]:
    """CPUs and RealMemory (MB) as slurmd itself sees them: a node configured with more is set INVALID."""
    out = subprocess.run([_sbin("slurmd"), "-C"], capture_output=True, text=True, timeout=30).stdout
    found = dict(re.findall(r"\b(CPUs|RealMemory)=(\d+)", out))
    return {"cpus": int(found.get("CPUs", os.cpu_count() or 1)), "memory_mb": int(found.get("RealMemory", 1024))}


def slurm_conf(
    root: Path, *, cpus: int, memory_mb: int, ctld_port: int, slurmd_port: int, ctld_host: str = "localhost",
    nodes: Mapping[str, str] = LOCAL_NODE,
) -> str:
    """`nodes`: name -> address; each has the CPUs and memory given. Per-node slurmd files carry the name."""
    node_lines = "\n".join(
        f"NodeName={name} NodeAddr={addr} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN"
        for name, addr in nodes.items()
    )
    return f"""\
ClusterName=culturalign-test
SlurmctldHost={ctld_host}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool-%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={root}/plugstack.conf
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=1800
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
{node_lines}
PartitionName=debug Nodes={",".join(nodes)} Default=YES MaxTime=INFINITE State=UP
"""


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_sbin("ip"), *args], capture_output=True, text=True, timeout=30)


def two_node_network() -> tuple[str, dict[str, str]]:
    """(controller address, node name -> address) on a subnet that overlaps none of the machine's routes."""
    # A route on our own bridge is a killed session's leftover, which netns_up removes.
    routes = [r for r in _ip("-4", "route", "show").stdout.splitlines() if f"dev {BRIDGE}" not in r]
    used = [ipaddress.ip_network(r.split()[0], strict=False) for r in routes if r[:1].isdigit()]
    for subnet in map(ipaddress.ip_network, SUBNETS):
        if not any(subnet.overlaps(u) for u in used):
            hosts = list(subnet.hosts())
            return str(hosts[0]), {name: str(hosts[10 + i]) for i, name in enumerate(NETNS_NAMES)}
    raise ClusterUnavailable(f"every candidate subnet for the two-node network is in use: {', '.join(SUBNETS)}")


def netns_down() -> None:
    """Remove the two-node network, also one a killed test session left (the caller holds the lock)."""
    for name in NETNS_NAMES:
        _ip("link", "del", f"cul-{name}")
        _ip("netns", "del", f"culturalign-{name}")
    _ip("link", "del", BRIDGE)


def netns_up(ctld_addr: str, nodes: Mapping[str, str]) -> None:
    """The bridge with the controller's address, and per node a network namespace joined to it by a
    veth pair. ClusterUnavailable where this machine does not let us create them."""
    netns_down()
    probe = _ip("link", "add", BRIDGE, "type", "bridge")
    if probe.returncode != 0:
        raise ClusterUnavailable(f"cannot create a network bridge for the two-node cluster: {probe.stderr.strip()}")
    unshare = subprocess.run([_sbin("unshare"), "--mount", "--uts", "true"], capture_output=True, text=True, timeout=30)
    if unshare.returncode != 0:
        raise ClusterUnavailable(f"cannot create mount and UTS namespaces: {unshare.stderr.strip()}")
    steps = [("addr", "add", f"{ctld_addr}/24", "dev", BRIDGE), ("link", "set", BRIDGE, "up")]
    for name, addr in nodes.items():
        ns, veth, inner = f"culturalign-{name}", f"cul-{name}", f"cul-{name}p"
        steps += [
            ("netns", "add", ns), ("link", "add", veth, "type", "veth", "peer", "name", inner),
            ("link", "set", veth, "master", BRIDGE), ("link", "set", veth, "up"), ("link", "set", inner, "netns", ns),
            ("-n", ns, "addr", "add", f"{addr}/24", "dev", inner), ("-n", ns, "link", "set", inner, "up"),
            ("-n", ns, "link", "set", "lo", "up"),
        ]  # fmt: skip
    for step in steps:
        proc = _ip(*step)
        if proc.returncode != 0:
            raise RuntimeError(f"two-node network: `ip {' '.join(step)}` failed: {proc.stderr.strip()}")


def _tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return f"--- {path.name}: (absent)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- {path.name} (last {len(text)} lines):\n" + "\n".join(text)


@dataclass
class SlurmCluster:
    root: Path
    cpus: int
    memory_mb: int
    nodes: Mapping[str, str] = field(default_factory=lambda: LOCAL_NODE)
    ctld_addr: str | None = None  # the two-node cluster's: each node in namespaces of its own
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    lock: object = None

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment whose SLURM client commands talk to this cluster (and only this one)."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        for var in [v for v in env if v.startswith(("SBATCH_", "SRUN_", "SQUEUE_", "CULTURALIGN_SLURM_"))]:
            del env[var]  # a user's own defaults (account, partition) would not exist here
        env["CULTURALIGN_SLURM_CPU_ONLY"] = "1"   # no GPUs here: the switch a CPU-only cluster's user sets
        return env

    def run(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=timeout)

    def logs(self) -> str:
        names = ["munged", "slurmctld", *(f"slurmd-{n}" for n in self.nodes)]
        return "\n".join(_tail(self.root / f"{name}.log") for name in names)

    def explain(self, proc: subprocess.CompletedProcess, workdir: Path) -> str:
        """For a failed assertion: snakemake's output, its jobs' SLURM logs, the daemons' logs."""
        job_logs = sorted((workdir / ".snakemake" / "slurm_logs").glob("**/*.log"))
        return "\n".join([proc.stdout[-3000:], *(_tail(p, 15) for p in job_logs), self.logs()])

    def _spawn(self, name: str, *cmd: str) -> None:
        out = open(self.root / f"{name}.stdout", "w")
        self.procs[name] = subprocess.Popen(
            cmd, env=self.env(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                stdout = _tail(self.root / f"{name}.stdout")
                raise RuntimeError(f"{name} exited with {proc.returncode} during start-up\n{stdout}\n{self.logs()}")

    def _take_machine(self, timeout: float) -> None:
        """Wait for any other test session's cluster to stop, then point /etc/slurm/slurm.conf here."""
        self.lock = open(LOCK_FILE, "w")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another test session held {LOCK_FILE} for {timeout:.0f} s") from None
                time.sleep(1)
        if SYSTEM_CONF.is_symlink() and os.readlink(SYSTEM_CONF).startswith(ROOT_PREFIX):
            SYSTEM_CONF.unlink()  # left by a test session that was killed: we hold the lock, it is gone
        if SYSTEM_CONF.exists():
            raise ClusterUnavailable(f"{SYSTEM_CONF} exists: this machine has a SLURM configuration of its own")
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.conf)

    def _release_machine(self) -> None:
        if SYSTEM_CONF.is_symlink() and os.readlink(SYSTEM_CONF) == str(self.conf):
            SYSTEM_CONF.unlink()
        if self.lock is not None:
            self.lock.close()  # releases the flock
            self.lock = None

    def start(self, timeout: float = 60, lock_timeout: float = 600) -> None:
        self._take_machine(lock_timeout)
        if self.ctld_addr:
            netns_up(self.ctld_addr, self.nodes)
            hosts = "127.0.0.1 localhost\n" + "".join(f"{a} {n}\n" for n, a in self.nodes.items())
            (self.root / "hosts").write_text(hosts)
        (self.root / "state").mkdir()
        for name in self.nodes:
            (self.root / f"spool-{name}").mkdir()
        (self.root / "plugstack.conf").write_text("")  # no site SPANK plugins from /etc/slurm
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._spawn(
            "munged", _sbin("munged"), "--foreground", "--force", f"--key-file={key}",
            f"--socket={self.root}/munge.socket", f"--pid-file={self.root}/munged.pid",
            f"--log-file={self.root}/munged.log", f"--seed-file={self.root}/munged.seed",
        )  # fmt: skip
        self._wait(lambda: (self.root / "munge.socket").exists(), timeout, "munged to create its socket")
        self._spawn("slurmctld", _sbin("slurmctld"), "-D", "-i", "-f", str(self.conf))
        self._wait(lambda: self.run("scontrol", "ping").returncode == 0, timeout, "slurmctld to answer `scontrol ping`")
        for name in self.nodes:
            self._spawn(f"slurmd-{name}", *self._slurmd_command(name))
        self._wait(self.nodes_idle, timeout, f"node(s) {', '.join(self.nodes)} to be idle in `sinfo`")

    def _slurmd_command(self, name: str) -> list[str]:
        slurmd = [_sbin("slurmd"), "-D", "-N", name, "-f", str(self.conf)]
        if not self.ctld_addr:
            return slurmd
        # Not `ip netns exec`: it mounts a fresh /sys without /sys/fs/cgroup, and slurmd then refuses to start.
        inside = f"mount --bind {self.root}/hosts /etc/hosts && hostname {name} && exec {_sbin('nsenter')} "
        inside += f"--net=/run/netns/culturalign-{name} {shlex.join(slurmd)}"
        return [_sbin("unshare"), "--mount", "--uts", "sh", "-c", inside]

    def nodes_idle(self) -> bool:
        out = self.run("sinfo", "--noheader", "--Node", "--format=%N %t").stdout
        return dict(line.split() for line in out.splitlines()) == {name: "idle" for name in self.nodes}

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if ready():
                return
            time.sleep(0.3)
        state = self.run("sinfo", "--Node", "--long").stdout if self.procs.get("slurmctld") else ""
        raise RuntimeError(f"SLURM test cluster: timed out after {timeout:.0f} s waiting for {what}\n{state}\n{self.logs()}")

    def stop(self) -> None:
        """Cancel what is left, stop the daemons (slurmd first) and remove the directory."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "--full", "--user", str(os.getuid()))
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.run("squeue", "--noheader", "--states=RUNNING,COMPLETING").stdout.strip():
                time.sleep(0.5)
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        if self.ctld_addr:
            netns_down()
        self._release_machine()
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(timeout: float = 60, *, two_nodes: bool = False) -> SlurmCluster:
    """A started cluster: one node on localhost, or two in namespaces. Raises ClusterUnavailable when
    this machine cannot host one, RuntimeError with the daemons' log tails when it does not come up."""
    node = detect_node()
    ctld_addr, nodes = two_node_network() if two_nodes else (None, LOCAL_NODE)
    # Short: the munge socket path must fit in a unix socket address (108 bytes).
    root = Path(tempfile.mkdtemp(prefix=Path(ROOT_PREFIX).name, dir=Path(ROOT_PREFIX).parent))
    # slurmctld runs only where SlurmctldHost names this host; the nodes reach it on the bridge.
    ctld_host = f"{socket.gethostname().split('.')[0]}({ctld_addr})" if two_nodes else "localhost"
    cluster = SlurmCluster(root, node["cpus"], node["memory_mb"], nodes=nodes, ctld_addr=ctld_addr)
    cluster.conf.write_text(slurm_conf(
        root, cpus=node["cpus"], memory_mb=node["memory_mb"], ctld_port=_free_port(), slurmd_port=_free_port(),
        ctld_host=ctld_host, nodes=nodes,
    ))  # fmt: skip
    try:
        cluster.start(timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextmanager
def running_cluster(*, two_nodes: bool = False) -> Iterator[SlurmCluster]:
    """A started cluster, stopped on leaving; pytest.skip where this machine cannot host one."""
    what = "two-node SLURM test cluster" if two_nodes else "SLURM test cluster"
    reason = ensure_installed(netns=two_nodes)
    if reason:
        pytest.skip(f"no {what}: {reason}")
    if os.geteuid() != 0:
        pytest.skip(f"no {what}: slurmd must run as root to start jobs")
    try:
        cluster = start_cluster(two_nodes=two_nodes)
    except ClusterUnavailable as e:
        pytest.skip(f"no {what}: {e}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """The one-node cluster for a module's tests. Module scope: each module importing this fixture gets
    its own instance, so a session-scoped one would start a second cluster while the first still held
    the machine lock."""
    with running_cluster() as cluster:
        yield cluster


def job_states(cluster: SlurmCluster) -> dict[str, tuple[str, str]]:
    """SLURM job id -> (state, comment) of every job the controller still remembers (MinJobAge)."""
    out = cluster.run("squeue", "--states=all", "--noheader", "--format=%i|%T|%k").stdout
    return {job: (state, comment) for job, state, comment in (line.split("|", 2) for line in out.splitlines())}


def snakemake_bin() -> str:
    return str(Path(sys.executable).with_name("snakemake"))


def snakemake_slurm_command(
    extra_args: list[str] = (), *, profiles: tuple[Path | str, ...] = (SLURM_PROFILE, TEST_PROFILE)
) -> list[str]:
    """`snakemake --profile profiles/slurm --profile tests/slurm/profile ...`: the second profile
    overrides the first key by key (CPU only, squeue status, fast status polls)."""
    cmd = [snakemake_bin()]
    for profile in profiles:
        cmd += ["--profile", str(profile)]
    return cmd + list(extra_args)


def run_snakemake_slurm(
    cluster: SlurmCluster,
    workdir: Path,
    extra_args: list[str] = (),
    *,
    profiles: tuple[Path | str, ...] = (SLURM_PROFILE, TEST_PROFILE),
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess:
    """Run the workflow in `workdir` (its Snakefile, or `--snakefile` in extra_args) through the SLURM
    profile on the test cluster. stdout and stderr together are in `.stdout`; the caller asserts on
    returncode (use `cluster.explain(proc, workdir)` as the message)."""
    return subprocess.run(
        snakemake_slurm_command(extra_args, profiles=profiles),
        cwd=workdir,
        env=cluster.env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
