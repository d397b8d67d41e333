"""The embedded demo workflow through profiles/slurm on the real one-node SLURM test cluster
(tests/slurm/cluster.py) gives the results a local run of the same config gives.

Each run has its own copy of the workflow and the same small override (FAST): one knowledge round
trained by 2 DeepSpeed ZeRO-1 CPU processes in both runs, short evaluations, and a safety target the
knowledge model already meets, so a single training job carries the comparison. The local run goes in
the background while the SLURM run waits on the scheduler: the SLURM executor polls job states at ever
longer intervals (+10 s per poll with no change), so the SLURM run is mostly waiting, and the workflow's
checkpoint loops leave it little to run in parallel.

Last, the same training on the two-node cluster (two slurmd in network namespaces of their own): one
process a node, so the rendezvous and the gradients cross a network, and the model must equal the local
run's.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from culturalign.io import read_json
from slurm.cluster import SlurmCluster, job_states, run_snakemake_slurm, running_cluster
from workflow_run import copy_workflow

# clean.shard_size 40KB cuts demo_alpaca (79 KB; a knowledge source and the safety replay) into 2 shards
# each, so the data stage has shard jobs; the other sources stay one job.
# Lists replace the demo's, so the risky sets are named again. Knowledge: the tiny model never reaches
# acc 1.0, so kg_r1 is trained and the loop ends at max_rounds with the better of base and kg_r1 (base on
# a tie). Safety: a target every model meets, so the loop stops at that model ("passed") without a second
# training job.
FAST = """\
eval:
  knowledge: {limit: 8}
  safety:
    mcq: {limit: 8}
    risky:
      - {path: demo/eval/risky.json, limit: 8}
      - {path: demo/eval/risky_history.json, limit: 8}
loop:
  knowledge: {target: {acc: 1.0}, max_rounds: 1, epochs_per_round: 1}
  safety: {target: {mcq_acc: 0.0, RR-1: 0.0, HR_max: 1.0}, max_rounds: 1, epochs_per_round: 1}
train: {nproc_per_node: 2}
generation: {max_new_tokens: 8}
clean: {shard_size: 40KB}
"""
# The same 2 training processes, one on each node.
TWO_NODES = "train: {nodes: 2, nproc_per_node: 1}\n"
CONFIG_ARGS = ["--configfile", "config.yaml", "fast.yaml"]
TIMEOUT = 900  # the SLURM run takes about 5 minutes on 2 cores
# Lines of Snakemake's log: a job started (locally) and a job submitted to SLURM.
STARTED = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$", re.M)
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")
# Timings, the only values allowed to differ: the wall time of a generation batch, and the report's
# section of per-job wall times.
TIMING_COLUMNS = ["latency_s"]
TIMING_SECTION = "Wall time"


def workflow_copy(repo_root: Path, dest: Path) -> Path:
    copy_workflow(repo_root, dest)
    (dest / "fast.yaml").write_text(FAST)
    (dest / "two_nodes.yaml").write_text(TWO_NODES)
    return dest


def snakemake_log(work: Path) -> str:
    """The log of the one Snakemake run in `work`."""
    (log,) = (work / ".snakemake" / "log").glob("*.snakemake.log")
    return log.read_text()


def submitted_jobs(work: Path) -> dict[str, Path]:
    """SLURM job id -> the job's log, for each job the SLURM run in `work` submitted."""
    return {job: Path(log) for job, log in SUBMITTED.findall(snakemake_log(work))}


def train_job(work: Path) -> str:
    (job,) = [job for job, log in submitted_jobs(work).items() if "rule_train" in log.parts]
    return job


def on_cluster(cluster: SlurmCluster, work: Path, *args: str) -> None:
    """The workflow in `work` through the SLURM profile; keep-successful-logs: the job logs are evidence
    that slurmd ran each job."""
    proc = run_snakemake_slurm(cluster, work, [*args, "--slurm-keep-successful-logs"], timeout=TIMEOUT)
    assert proc.returncode == 0, cluster.explain(proc, work)


@dataclass
class Runs:
    """The local and the SLURM run's directories."""

    local: Path
    slurm: Path
    # Read from SLURM before the cluster stops: job id -> (state, comment), and the training job's record.
    states: dict[str, tuple[str, str]]
    train_job: str


@pytest.fixture(scope="module")
def runs(repo_root: Path, tmp_path_factory) -> Runs:
    """Both runs. The cluster stops with this fixture, so the two-node test can start its own."""
    local = workflow_copy(repo_root, tmp_path_factory.mktemp("local"))
    on_slurm = workflow_copy(repo_root, tmp_path_factory.mktemp("slurm"))
    with running_cluster() as cluster, open(local / "snakemake.out", "w") as out:
        local_run = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2", *CONFIG_ARGS],
                                     cwd=local, stdout=out, stderr=subprocess.STDOUT)
        try:
            on_cluster(cluster, on_slurm, *CONFIG_ARGS)
        finally:
            local_run.wait(timeout=TIMEOUT)
        states = job_states(cluster)
        train = cluster.run("scontrol", "show", "job", train_job(on_slurm)).stdout
    assert local_run.returncode == 0, (local / "snakemake.out").read_text()[-3000:]
    return Runs(local, on_slurm, states, train)


def both(runs: Runs, path: str) -> tuple[Path, Path]:
    return runs.local / path, runs.slurm / path


def outputs(runs: Runs, pattern: str) -> list[str]:
    """The local run's files matching `pattern`, relative to its directory."""
    return sorted(str(p.relative_to(runs.local)) for p in runs.local.glob(pattern))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_job_ran_as_a_slurm_job(runs):
    """The SLURM run submitted the jobs the local run ran (all but the target rule `all`), and SLURM
    ran each to completion, with its log where the executor said."""
    local_jobs = Counter(STARTED.findall(snakemake_log(runs.local)))
    del local_jobs["all"]
    slurm_jobs = Counter()
    for job, log in submitted_jobs(runs.slurm).items():
        rule = log.relative_to(runs.slurm / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_")
        slurm_jobs[rule] += 1
        assert log.is_file(), log
        state, comment = runs.states[job]
        assert state == "COMPLETED" and re.fullmatch(rf"rule_{rule}(_wildcards_.+)?", comment), (job, log)
    assert slurm_jobs == local_jobs
    assert slurm_jobs["train"] == 1


def test_shards_ran_as_separate_slurm_jobs(runs):
    """demo_alpaca (the one demo source over 40KB) in 2 shards: 2 clean_shard and 2 filter_shard sbatch jobs,
    each its own SLURM job, and one source_duplicates job; the stats say how it was split."""
    rules = Counter()
    for job, log in submitted_jobs(runs.slurm).items():
        rule = log.relative_to(runs.slurm / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_")
        if rule in ("clean_shard", "filter_shard", "source_duplicates"):
            rules[rule] += 1
            assert runs.states[job][0] == "COMPLETED", (job, log)
    assert rules == {"clean_shard": 2, "filter_shard": 2, "source_duplicates": 1}
    split = read_json(runs.slurm / "results/data/knowledge/demo_alpaca/stats.json")["split"]
    assert split["shards"] == 2 and split["shard_size"] == "40KB"


def test_training_job_took_the_test_profiles_resources(runs):
    """One node, and the 2 CPUs tests/slurm/profile sets for `train`, for 2 training processes."""
    assert "NumNodes=1" in runs.train_job and "NumCPUs=2" in runs.train_job, runs.train_job
    for summary in both(runs, "results/models/kg_r1/train_summary.json"):
        assert read_json(summary)["world_size"] == 2


def test_data_stage_is_identical(runs):
    for stage in ("knowledge", "safety"):
        assert_frame_equal(*(pl.read_parquet(p) for p in both(runs, f"results/data/{stage}/train.parquet")))
    stats = outputs(runs, "results/data/*/*/stats.json")
    assert len(stats) == 4  # the demo's 3 knowledge sources and 1 safety source
    for path in stats:
        local, on_slurm = both(runs, path)
        assert read_json(local) == read_json(on_slurm), path


def test_loops_select_the_same_models(runs):
    acc = {m: read_json(runs.local / f"results/scores/{m}/knowledge.json")["acc"]["overall"] for m in ("base", "kg_r1")}
    kg = "kg_r1" if acc["kg_r1"] > acc["base"] else "base"   # the best round (ties: the earlier)
    for stage, selected, reason in (("knowledge", kg, "max_rounds"), ("safety", kg, "passed")):
        local, on_slurm = (read_json(p) for p in both(runs, f"results/loop/{stage}.json"))
        assert (local["selected"], local["reason"]) == (selected, reason)
        assert local == on_slurm


# Exact equality, not a tolerance: both runs train on the same CPU with 2 ranks and one OpenMP thread a
# process (the launcher's default), so the arithmetic is the same, step for step. The SLURM and local
# runs were found bit-identical (weights, losses, answers), also with the ranks on two nodes (gloo over
# TCP instead of shared memory: a sum of two is the same in any order). A difference means they did
# not train alike.
def assert_same_training(local: Path, other: Path) -> None:
    model = Path("results/models/kg_r1")
    local_log, other_log = (read_jsonl(run / model / "trainer_log.jsonl") for run in (local, other))
    assert [s["step"] for s in local_log] == [s["step"] for s in other_log] != []
    assert [s["loss"] for s in local_log] == [s["loss"] for s in other_log]
    assert (local / model / "model.safetensors").read_bytes() == (other / model / "model.safetensors").read_bytes()


def test_training_is_bit_identical(runs):
    assert_same_training(runs.local, runs.slurm)


def test_answers_and_scores_are_identical(runs):
    generations = outputs(runs, "results/generations/*/*.parquet")
    # base on the three evaluation sets and the guard sets; kg_r1 on knowledge and the guard sets (and on
    # the safety sets too when the knowledge loop picked it)
    expected = [f"results/generations/base/{e}.parquet" for e in ("knowledge", "mcq", "risky", "guard")]
    expected += [f"results/generations/kg_r1/{e}.parquet" for e in ("knowledge", "guard")]
    assert set(expected) <= set(generations)
    for path in generations:
        local, on_slurm = (pl.read_parquet(p).drop(TIMING_COLUMNS, strict=False) for p in both(runs, path))
        assert_frame_equal(local, on_slurm)
    scores = outputs(runs, "results/scores/*/*.json")
    assert {f"results/scores/{m}/{s}.json" for m in ("base", "kg_r1") for s in ("knowledge", "guard")} <= set(scores)
    for path in scores:
        local, on_slurm = both(runs, path)
        assert read_json(local) == read_json(on_slurm), path


def report_sections(path: Path) -> dict[str, str]:
    """report.md by `## ` heading, without the per-job wall times."""
    _, *sections = path.read_text().split("\n## ")
    return {s.split("\n", 1)[0]: s for s in sections if not s.startswith(TIMING_SECTION)}


def test_reports_agree(runs):
    local, on_slurm = both(runs, "results/report/report.md")
    assert report_sections(local) == report_sections(on_slurm)
    assert len(report_sections(local)) >= 5
    assert all(p.stat().st_size > 0 for p in both(runs, "results/report/report.html"))


def test_two_node_training_equals_one_node(runs, repo_root, tmp_path):
    """kg_r1 trained on the two-node cluster by one process a node: `train` asks SLURM for both nodes,
    the launcher starts one torchrun a node with srun, they meet at a rendezvous on the first node, and
    the gradients cross the bridge. Still 2 ranks, so the model equals the local 1 node x 2 processes.
    The local run's training inputs (tiny model, knowledge mix) are copied in: only `train` runs."""
    work = workflow_copy(repo_root, tmp_path)
    for inputs in ("results/models/tiny", "results/data/knowledge"):
        shutil.copytree(runs.local / inputs, work / inputs)
    with running_cluster(two_nodes=True) as cluster:
        on_cluster(cluster, work, "results/models/kg_r1", *CONFIG_ARGS, "two_nodes.yaml")
        job = cluster.run("scontrol", "show", "job", train_job(work)).stdout
    assert len(submitted_jobs(work)) == 1
    assert all(f in job for f in ("JobState=COMPLETED", "NumNodes=2", "NumTasks=2", "NodeList=cn[1-2]")), job
    # errors="replace": both tasks' progress bars are in it, interleaved mid-character
    log = (work / "logs" / "train" / "kg_r1.log").read_text(errors="replace")
    launch = re.search(r"launch: (.*)", log).group(1)
    assert launch.startswith("srun --nodes 2 --ntasks 2 --ntasks-per-node 1") and "--rdzv-endpoint cn1:" in launch
    assert read_json(work / "results/models/kg_r1/train_summary.json")["world_size"] == 2
    assert_same_training(runs.local, work)
