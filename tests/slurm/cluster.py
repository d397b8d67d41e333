"""A real one-node SLURM cluster on localhost, for the tests that submit through the SLURM executor.

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
come from `squeue` (MinJobAge keeps finished jobs visible to it for 5 minutes).
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
APT_PACKAGES = ("slurm-wlm", "munge")
REPO = Path(__file__).resolve().parents[2]
SLURM_PROFILE = REPO / "profiles" / "slurm"
# CPU-only overrides for tests on this cluster: no account or partition, status from squeue.
TEST_PROFILE = Path(__file__).resolve().parent / "profile"
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
ROOT_PREFIX = "/tmp/culturalign-slurm-"
LOCK_FILE = Path("/tmp/culturalign-slurm.lock")


class ClusterUnavailable(Exception):
    """This machine cannot host the test cluster (a reason to skip, not a failure)."""


def _sbin(name: str) -> str | None:
    """Daemons live in /usr/sbin, which a non-login PATH may lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def missing_daemons() -> list[str]:
    return [d for d in DAEMONS if _sbin(d) is None] + [c for c in ("sbatch", "squeue", "sinfo") if not shutil.which(c)]


def ensure_installed(timeout: float = 600) -> str | None:
    """Install slurm-wlm and munge with apt when missing. Returns why that is impossible, or None."""
    if not missing_daemons():
        return None
    if os.geteuid() != 0:
        return f"SLURM/munge not installed ({', '.join(missing_daemons())} missing) and not root to apt-get install them"
    if not shutil.which("apt-get"):
        return f"SLURM/munge not installed ({', '.join(missing_daemons())} missing) and no apt-get to install them"
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    steps = (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES])
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(cmd)}` did not finish in {timeout:.0f} s (no package mirror reachable?)"
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed (rc {proc.returncode}): {proc.stderr.strip()[-800:]}"
    still = missing_daemons()
    return f"installed {' '.join(APT_PACKAGES)} but still missing: {', '.join(still)}" if still else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def detect_node() -> dict[str, int]:
    """CPUs and RealMemory (MB) as slurmd itself sees them: a node configured with more is set INVALID."""
    out = subprocess.run([_sbin("slurmd"), "-C"], capture_output=True, text=True, timeout=30).stdout
    found = dict(re.findall(r"\b(CPUs|RealMemory)=(\d+)", out))
    return {"cpus": int(found.get("CPUs", os.cpu_count() or 1)), "memory_mb": int(found.get("RealMemory", 1024))}


def slurm_conf(root: Path, *, cpus: int, memory_mb: int, ctld_port: int, slurmd_port: int) -> str:
    return f"""\
ClusterName=culturalign-test
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
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
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


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
        return env

    def run(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=timeout)

    def logs(self) -> str:
        return "\n".join(_tail(self.root / f"{d}.log") for d in DAEMONS)

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
        (self.root / "state").mkdir()
        (self.root / "spool").mkdir()
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
        self._spawn("slurmd", _sbin("slurmd"), "-D", "-N", "localhost", "-f", str(self.conf))
        self._wait(self.node_idle, timeout, "node localhost to be idle in `sinfo`")

    def node_idle(self) -> bool:
        out = self.run("sinfo", "--noheader", "--Node", "--format=%N %t").stdout.split()
        return out[:2] == ["localhost", "idle"]

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
        self._release_machine()
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(timeout: float = 60) -> SlurmCluster:
    """A started cluster. Raises ClusterUnavailable when this machine cannot host one, RuntimeError
    with the daemons' log tails when it does not come up."""
    node = detect_node()
    # Short: the munge socket path must fit in a unix socket address (108 bytes).
    root = Path(tempfile.mkdtemp(prefix=Path(ROOT_PREFIX).name, dir=Path(ROOT_PREFIX).parent))
    cluster = SlurmCluster(root, node["cpus"], node["memory_mb"])
    cluster.conf.write_text(
        slurm_conf(root, cpus=node["cpus"], memory_mb=node["memory_mb"], ctld_port=_free_port(), slurmd_port=_free_port())
    )
    try:
        cluster.start(timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


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
