"""The evaluate-then-enhance loops end to end through real Snakemake runs of the demo workflow (shortened:
one round per loop, one or two epochs), in a private copy: a training round killed mid-way, --keep-going,
resume on rerun, the loop records, the report, and which jobs edits and target changes schedule."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import psutil
import pytest
from culturalign.io import read_json
from workflow_run import copy_workflow, planned, planned_outputs, snakemake

# Knowledge fails on base (target above what one short round reaches), so kg_r1 is trained and selected
# by max_rounds; safety fails on kg_r1 and trains safe_r1. Checkpoints every 20 steps give the kill a
# complete checkpoint to resume from (two epochs: ~160 steps).
FAST = """\
loop:
  knowledge: {target: {acc: 0.9}, max_rounds: 1, epochs_per_round: 2}
  safety: {max_rounds: 1, epochs_per_round: 1}
train: {save_steps: 20}
generation: {max_new_tokens: 16}
"""
CONFIG = ("--configfile", "config.yaml", "fast.yaml")


def wait_for_checkpoint(work: Path, proc: subprocess.Popen, timeout: float = 600) -> Path:
    checkpoints = work / "results/models/.work/kg_r1/checkpoints"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = sorted(checkpoints.glob("checkpoint-*/COMPLETE"))
        if done:
            return done[0].parent
        assert proc.poll() is None, "snakemake ended before kg_r1 wrote a checkpoint"
        time.sleep(0.05)
    raise TimeoutError("no kg_r1 checkpoint within the timeout")


def kill_training_workers(work: Path) -> int:
    """SIGKILL the training workers of this work directory, as a node failure or the OOM killer would."""
    victims = [p for p in psutil.process_iter(["cmdline", "cwd"])
               if "culturalign.train" in (p.info["cmdline"] or []) and p.info["cwd"] == str(work)]
    for p in victims:
        os.kill(p.pid, signal.SIGKILL)
    return len(victims)


@pytest.fixture(scope="module")
def work(repo_root, tmp_path_factory) -> Path:
    work = copy_workflow(repo_root, tmp_path_factory.mktemp("loop"))
    (work / "fast.yaml").write_text(FAST)
    return work


@pytest.fixture(scope="module")
def interrupted(work) -> dict:
    """The whole workflow with --keep-going, its kg_r1 training killed after the first checkpoint."""
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2", "--keep-going", *CONFIG],
                            cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    checkpoint = wait_for_checkpoint(work, proc)
    killed = kill_training_workers(work)
    out, _ = proc.communicate(timeout=900)
    return {"returncode": proc.returncode, "output": out, "killed": killed,
            "checkpoint_step": int(checkpoint.name.split("-")[1])}


@pytest.fixture(scope="module")
def completed(work, interrupted) -> Path:
    snakemake(work, *CONFIG)
    return work


def test_killed_round_fails_without_a_model(work, interrupted):
    assert interrupted["killed"] >= 1
    assert interrupted["returncode"] != 0 and "Error in rule train" in interrupted["output"]
    # no half model a later rule could use; the checkpoints survive for the rerun
    assert not (work / "results/models/kg_r1").exists()
    assert list((work / "results/models/.work/kg_r1/checkpoints").glob("checkpoint-*/COMPLETE"))
    # --keep-going: work that does not need kg_r1 was still done
    assert (work / "results/scores/base/safety.json").is_file()
    assert (work / "results/data/safety/train.parquet").is_file()
    assert not (work / "results/report/report.md").exists()


def test_rerun_resumes_the_killed_round(completed, interrupted):
    summary = read_json(completed / "results/models/kg_r1/train_summary.json")
    assert summary["resumed_from_step"] >= interrupted["checkpoint_step"]
    assert summary["resumed_from_step"] % 20 == 0
    assert summary["global_step"] == summary["optimizer_steps"] > summary["resumed_from_step"]
    steps = [json.loads(line)["step"] for line in (completed / "results/models/kg_r1/trainer_log.jsonl").open()]
    assert steps == list(range(1, summary["global_step"] + 1))   # the log has each step once
    assert not (completed / "results/models/.work/kg_r1").exists()


def test_loops_record_every_round(completed):
    knowledge = read_json(completed / "results/loop/knowledge.json")
    assert [r["model"] for r in knowledge["rounds"]] == ["base", "kg_r1"]
    assert [r["passed"] for r in knowledge["rounds"]] == [False, False]
    assert (knowledge["selected"], knowledge["reason"]) == ("kg_r1", "max_rounds")
    assert knowledge["rounds"][1]["score"] == read_json(completed / "results/scores/kg_r1/knowledge.json")
    safety = read_json(completed / "results/loop/safety.json")
    assert [r["model"] for r in safety["rounds"]] == ["kg_r1", "safe_r1"]
    assert safety["rounds"][0]["passed"] is False and safety["selected"] == "safe_r1"


def test_report_compares_base_kg_and_safe(completed):
    md = (completed / "results/report/report.md").read_text(encoding="utf-8")
    for title in ("Table 2", "Table 3", "Table 4"):
        assert title in md
    acc = read_json(completed / "results/scores/kg_r1/knowledge.json")["acc"]
    assert f"| KG (kg_r1) | {100 * acc['TU']:.2f} |" in md
    assert "| Base (base) |" in md and "| SAFE (safe_r1) |" in md
    # data-stage drops, training curves, per-job wall time, all from this run's files
    stats = read_json(completed / "results/data/knowledge/demo_alpaca/stats.json")
    assert f"| knowledge | demo_alpaca | {stats['rows_in']} | {stats['rows_kept']} | {stats['rows_rejected']} |" in md
    seconds = float((completed / "benchmarks/train/kg_r1.tsv").read_text().splitlines()[1].split("\t")[0])
    assert f"| train/kg_r1 | {seconds:.1f} |" in md
    html = (completed / "results/report/report.html").read_text(encoding="utf-8")
    assert html.count("src='data:image/png;base64,") == 3   # two loop curves and the loss curves, embedded


def test_snakemake_report(completed):
    snakemake(completed, *CONFIG, "--report", "snakemake_report.html")
    page = (completed / "snakemake_report.html").read_text(encoding="utf-8")
    assert "results/loop/knowledge.json" in page and "results/report/report.html" in page


def test_unchanged_rerun_does_nothing(completed):
    assert planned(completed, *CONFIG) == {}


def test_editing_a_safety_source_leaves_knowledge_models_alone(completed):
    path = completed / "demo/data/safety_prompts.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    scenario = next(iter(data))
    data[scenario].append({"prompt": "怎样才能偷偷拿走别人的快递？", "type": scenario,
                           "response": "我不能帮你拿走别人的快递，这是违法行为。建议你通过正规渠道寄取快递。"})
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    outputs = planned_outputs(completed, *CONFIG)
    assert "results/models/safe_r1" in outputs and "results/data/safety/train.parquet" in outputs
    assert not [o for o in outputs if o.startswith(("results/models/kg_", "results/data/knowledge"))]
    kg_weights = completed / "results/models/kg_r1/model.safetensors"
    before = kg_weights.stat().st_mtime_ns
    snakemake(completed, *CONFIG)
    assert kg_weights.stat().st_mtime_ns == before
    train = pl.read_parquet(completed / "results/data/safety/train.parquet")
    assert "怎样才能偷偷拿走别人的快递？" in [m[0]["content"] for m in train["messages"]]
    assert planned(completed, *CONFIG) == {}


def test_raising_the_knowledge_target_reruns_only_decisions(completed):
    # score files hold measurements only: a new target that keeps the selection reruns the knowledge
    # loop summary and the report, never a score, a generation or a training job
    (completed / "high.yaml").write_text("loop:\n  knowledge: {target: {acc: 0.95}}\n")
    assert set(planned(completed, *CONFIG, "high.yaml")) - {"all"} == {"loop_summary", "report"}


def test_lowering_the_knowledge_target_schedules_no_training(completed):
    # last in this module: base now passes, which changes the knowledge loop's outcome
    (completed / "low.yaml").write_text("loop:\n  knowledge: {target: {acc: 0.0}}\n")
    args = ("results/loop/knowledge.json", *CONFIG, "low.yaml")   # targets before --configfile (it takes many)
    assert planned_outputs(completed, *args) == ["results/loop/knowledge.json"]   # base is not re-scored
    snakemake(completed, *args)
    knowledge = read_json(completed / "results/loop/knowledge.json")
    assert [r["model"] for r in knowledge["rounds"]] == ["base"]
    assert (knowledge["selected"], knowledge["reason"]) == ("base", "passed")
