"""A preference (DPO) round as a SLURM job: the workflow's own train script (scripts/train/train.py, the
dpo branch) and launch path, submitted by `snakemake --profile slurm` on the real one-node test cluster
(tests/slurm/cluster.py), 2 DeepSpeed ZeRO-1 processes in the job's allocation. The rest of the loop around
it (pairs, choice) is tested without SLURM (tests/test_remedies.py, tests/test_preference.py)."""
from __future__ import annotations

import json
import textwrap

from culturalign.io import read_json
from culturalign.train.preference import mean_margin
from slurm.cluster import REPO, job_states, run_snakemake_slurm, slurm_cluster  # noqa: F401 (a fixture)
from test_preference import CPU, pairs_file

SNAKEFILE = """\
import os
os.environ["PYTHONPATH"] = {repo!r}

rule all:
    input: "results/models/safe_r2"

rule train:
    input: model={model!r}, data="pairs.parquet"
    output: directory("results/models/{{model}}")
    params:
        train={train!r},
        epochs=2,
        workdir="results/models/.work/{{model}}",
        remedy={{"name": "dpo", "beta": 0.1}},
    resources: nodes=1
    threads: 2
    log: "logs/train/{{model}}.log"
    script: {script!r}
"""


def test_dpo_round_runs_as_a_slurm_job(slurm_cluster, tiny_model, tmp_path):
    work = tmp_path / "wf"
    work.mkdir()
    pairs = pairs_file(work / "pairs.parquet")
    train = {**CPU, "nproc_per_node": 2, "per_device_train_batch_size": 1}
    (work / "Snakefile").write_text(textwrap.dedent(SNAKEFILE.format(
        repo=str(REPO), model=tiny_model, train=train, script=str(REPO / "scripts" / "train" / "train.py"))))
    proc = run_snakemake_slurm(slurm_cluster, work, timeout=600)
    assert proc.returncode == 0, slurm_cluster.explain(proc, work)
    states = job_states(slurm_cluster)
    assert ("COMPLETED", "rule_train_wildcards_safe_r2") in states.values(), states
    summary = read_json(work / "results/models/safe_r2/train_summary.json")
    # 8 pairs, 1 pair x 2 processes a step, 2 epochs: 8 steps of DPO on 2 ZeRO-1 processes
    assert (summary["method"], summary["world_size"], summary["global_step"]) == ("dpo", 2, 8)
    assert json.loads((work / "results/models/safe_r2/config.json").read_text())["hidden_size"] == 32
    assert mean_margin(str(work / "results/models/safe_r2"), pairs) > mean_margin(tiny_model, pairs) + 1.0
