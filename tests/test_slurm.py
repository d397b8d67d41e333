"""SLURM: profiles/slurm on a real one-node cluster (tests/slurm/cluster.py), and the sbatch flags of a
two-node training job.

The cluster tests submit through `snakemake --profile slurm` (the profile installed by
profiles/install_slurm_profile.sh) plus the CPU-only test overrides, and check from the outputs and from
SLURM itself that the jobs ran as SLURM jobs with the asked task geometry.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from slurm.cluster import (
    REPO,
    SLURM_PROFILE,
    TEST_PROFILE,
    SlurmCluster,
    job_states,
    run_snakemake_slurm,
    slurm_cluster,  # noqa: F401 (a fixture)
    snakemake_bin,
    snakemake_slurm_command,
)


@pytest.fixture(scope="session")
def installed_profile_home(tmp_path_factory) -> Path:
    """A HOME in which profiles/install_slurm_profile.sh has installed the profile as `slurm`."""
    home = tmp_path_factory.mktemp("home")
    script = REPO / "profiles" / "install_slurm_profile.sh"
    subprocess.run(["bash", str(script)], env=user_env(home), check=True, capture_output=True)
    assert (home / ".config" / "snakemake" / "slurm").resolve() == SLURM_PROFILE.resolve()
    return home


def write_workflow(workdir: Path, snakefile: str) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Snakefile").write_text(textwrap.dedent(snakefile))
    return workdir


def user_env(home: Path) -> dict[str, str]:
    """The environment of a user whose HOME holds the installed profile."""
    return {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"} | {"HOME": str(home)}


def run_installed(cluster: SlurmCluster, workdir: Path, home: Path, extra_args: list[str] = ()) -> subprocess.CompletedProcess:
    """`snakemake --profile slurm` by name, as a user runs it, with the test overrides on top."""
    return run_snakemake_slurm(cluster, workdir, extra_args, profiles=("slurm", TEST_PROFILE), env=user_env(home))


TWO_RULES = """\
rule all:
    input: "tasks.txt"

# An ordinary job: the executor runs it in an `srun -n1` step of its own allocation.
rule where:
    output: "where.txt"
    shell: "echo $SLURM_JOB_ID $SLURM_NTASKS > {output}"

# An MPI-style job as `train` is: mpi="srun" means the executor does not wrap it, the rule calls srun
# itself and gets one process per task. runtime=1: a nested-srun hang would end in TIMEOUT instead.
# The executor's job step removes SLURM_* variables but the job id from the rule's environment (the
# `outer` line shows it), so srun needs the task count spelled out; inside srun's tasks they are back.
rule tasks:
    input: "where.txt"
    output: "tasks.txt"
    resources: nodes=1, tasks=2, mpi="srun", runtime=1
    shell:
        "cat {input} > {output}; echo outer ${{SLURM_NTASKS:-unset}} ${{SLURM_JOB_NODELIST:-unset}} >> {output}; "
        "{resources.mpi} --ntasks={resources.tasks} --nodes={resources.nodes} "
        "bash -c 'echo $SLURM_JOB_ID $SLURM_PROCID $SLURM_NTASKS $SLURM_JOB_NODELIST' >> {output}"
"""


def test_two_rules_run_as_slurm_jobs(slurm_cluster, installed_profile_home, tmp_path):
    workdir = write_workflow(tmp_path / "wf", TWO_RULES)
    proc = run_installed(slurm_cluster, workdir, installed_profile_home)
    assert proc.returncode == 0, slurm_cluster.explain(proc, workdir)

    first, outer, *tasks = (workdir / "tasks.txt").read_text().splitlines()
    where_job, where_ntasks = first.split()
    assert where_ntasks == "1"
    assert outer == "outer unset unset"
    task_lines = sorted(line.split() for line in tasks)
    assert len(task_lines) == 2
    tasks_job = task_lines[0][0]
    assert tasks_job != where_job and tasks_job.isdigit() and where_job.isdigit()
    assert task_lines == [[tasks_job, "0", "2", "localhost"], [tasks_job, "1", "2", "localhost"]]

    states = job_states(slurm_cluster)
    assert states[where_job] == ("COMPLETED", "rule_where")
    assert states[tasks_job] == ("COMPLETED", "rule_tasks")
    detail = slurm_cluster.run("scontrol", "show", "job", tasks_job).stdout
    assert "NumNodes=1" in detail and "NumTasks=2" in detail


NESTED_SRUN = """\
# No mpi resource: the executor runs the job inside its own `srun -n1` step, which holds every CPU of the
# allocation, so the srun in the shell command waits for a free CPU until the time limit kills the job.
rule nested:
    output: "nested.txt"
    resources: runtime=1
    shell: "srun hostname > {output}"
"""


def test_srun_inside_a_wrapped_job_hangs_until_time_limit(slurm_cluster, installed_profile_home, tmp_path):
    """The trap `mpi="srun"` avoids. SLURM ends the job at its 1-minute limit (checked every 30 s);
    snakemake would notice only at its next, ever longer, status poll, so the test watches SLURM."""
    workdir = write_workflow(tmp_path / "wf", NESTED_SRUN)
    with open(tmp_path / "snakemake.out", "w") as out:
        snakemake = subprocess.Popen(
            snakemake_slurm_command(profiles=("slurm", TEST_PROFILE)),
            cwd=workdir, env=slurm_cluster.env(user_env(installed_profile_home)), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            state = wait_for_end(slurm_cluster, "rule_nested", timeout=150)
        finally:
            stop(snakemake)
    proc = subprocess.CompletedProcess(snakemake.args, snakemake.returncode, (tmp_path / "snakemake.out").read_text())
    job, status = state
    assert status == "TIMEOUT", slurm_cluster.explain(proc, workdir)
    assert not (workdir / "nested.txt").exists()
    slurm_log = (workdir / ".snakemake" / "slurm_logs" / "rule_nested" / f"{job}.log").read_text()
    assert "step creation temporarily disabled" in slurm_log


def stop(snakemake: subprocess.Popen) -> None:
    """Interrupt snakemake as Ctrl-C does: it cancels its jobs and exits (on SIGTERM it lingers)."""
    snakemake.send_signal(signal.SIGINT)
    try:
        snakemake.wait(timeout=30)
    except subprocess.TimeoutExpired:
        snakemake.kill()
        snakemake.wait()


def wait_for_end(cluster: SlurmCluster, comment: str, timeout: float) -> tuple[str, str]:
    """(job id, final state) of the job snakemake submitted with this comment, once it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = [(job, state) for job, (state, c) in job_states(cluster).items() if c == comment and state in ENDED]
        if ended:
            return ended[0]
        time.sleep(2)
    raise AssertionError(f"no job '{comment}' ended within {timeout:.0f} s: {job_states(cluster)}\n{cluster.logs()}")


ENDED = {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


# `train` exactly as rules/train.smk declares its resources, for train.nodes: 2; `mix` stands for the CPU rules.
TRAIN_TWO_NODES = """\
import culturalign.loop.workflow as wf

rule all:
    input: "model", "mix.parquet"

rule train:
    output: "model"
    resources: **wf.train_resources({"train": {"nodes": 2}})
    shell: "touch {output}"

rule mix:
    output: "mix.parquet"
    shell: "touch {output}"
"""

FAKE_SBATCH = """\
#!{python}
# Fake sbatch: records its arguments and refuses. Only for the two-node job, which one node cannot run.
import json, os, sys
with open(os.environ["FAKE_SBATCH_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit("fake sbatch: recorded, not submitted")
"""

# The plugin checks a given account with sacctmgr; the fake one knows exactly the account we set.
FAKE_SACCTMGR = """\
#!/bin/sh
echo proj_a
"""


def sbatch_flags(argv: list[str]) -> dict[str, str]:
    """`--nodes=2` / `-t 1440` / `--requeue` -> {"--nodes": "2", "-t": "1440", "--requeue": ""}; no --wrap."""
    flags, args = {}, iter(argv)
    for arg in args:
        if arg.startswith("--wrap"):
            continue
        if "=" in arg:
            key, value = arg.split("=", 1)
        elif arg.startswith("-") and arg not in ("--parsable", "--requeue"):
            key, value = arg, next(args)
        else:
            key, value = arg, ""
        flags[key] = value
    return flags


def test_two_node_training_sbatch_flags(tmp_path):
    """The sbatch call for `train` on 2 nodes under profiles/slurm, captured by a fake sbatch: a real
    two-node job cannot run on the one-node test cluster. Account and partitions come from the
    environment variables the profile documents."""
    workdir = write_workflow(tmp_path / "wf", TRAIN_TWO_NODES)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH.format(python=sys.executable)), ("sacctmgr", FAKE_SACCTMGR)):
        (fake_bin / name).write_text(text)
        (fake_bin / name).chmod(0o755)
    log = tmp_path / "sbatch.jsonl"
    # No SLURM_CONF: slurm commands the plugin calls (scontrol, for MinJobAge) use the machine's
    # configuration if any, or fail at once; a SLURM_CONF naming a missing file would make them
    # search DNS for a controller for a minute.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "CULTURALIGN_SLURM_"))}
    env |= {
        "PATH": f"{fake_bin}:{Path(snakemake_bin()).parent}:{env['PATH']}",
        "FAKE_SBATCH_LOG": str(log),
        "CULTURALIGN_SLURM_ACCOUNT": "proj_a",
        "CULTURALIGN_SLURM_PARTITION": "cpu",
        "CULTURALIGN_SLURM_GPU_PARTITION": "gpu",
    }
    cmd = [snakemake_bin(), "--profile", str(SLURM_PROFILE), "--retries", "0"]
    cmd += ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1"]
    proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert proc.returncode != 0 and "fake sbatch: recorded" in proc.stdout, proc.stdout[-3000:]

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    by_rule = {sbatch_flags(argv)["--comment"]: argv for argv in calls}
    assert sorted(by_rule) == ["rule_mix", "rule_train"]

    train = sbatch_flags(by_rule["rule_train"])
    assert train["--nodes"] == "2" and train["--ntasks"] == "2"  # one task, one torchrun, per node
    assert train["--gres"] == "gpu:8"  # per node; --gpus would count GPUs for the whole job
    assert "--gpus" not in train and "--ntasks-per-gpu" not in train  # that would pin each torchrun to one GPU
    assert train["--cpus-per-task"] == "32" and train["--mem"] == "256000" and train["-t"] == "1440"
    assert train["-A"] == "proj_a" and train["-p"] == "gpu"
    assert "--requeue" in train
    # mpi="srun": the job runs the rule directly; the executor adds no srun of its own around it.
    wrap = next(arg for arg in by_rule["rule_train"] if arg.startswith("--wrap="))
    assert wrap.startswith(f"--wrap={Path(snakemake_bin()).parent}") and " srun " not in wrap

    mix = sbatch_flags(by_rule["rule_mix"])
    assert mix["-A"] == "proj_a" and mix["-p"] == "cpu"
    assert mix["--ntasks"] == "1" and "--nodes" not in mix and "--gres" not in mix
    assert mix["--mem"] == "16000" and mix["-t"] == "60"
