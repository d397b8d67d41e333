"""The data stage through real Snakemake runs on the demo config, in a copy of the workflow:
outputs and their invariants, and incremental reruns (issue: only affected work runs again)."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from workflow_run import copy_workflow, planned as plan, snakemake, snakemake_fails, snapshot

TARGETS = ["results/data/knowledge/train.parquet", "results/data/safety/train.parquet"]


@pytest.fixture(scope="module")
def workdir(repo_root, tmp_path_factory) -> Path:
    work = copy_workflow(repo_root, tmp_path_factory.mktemp("workflow"))
    snakemake(work, *TARGETS)
    return work


def planned(work: Path, *args: str) -> dict[str, int]:
    return plan(work, *TARGETS, *args)


def test_outputs_keep_every_row(workdir):
    for stats_path in workdir.glob("results/data/*/*/stats.json"):
        stats = json.loads(stats_path.read_text())
        kept = pl.read_parquet(stats_path.parent / "clean.parquet")
        rejected = pl.read_parquet(stats_path.parent / "rejected.parquet")
        assert stats["rows_in"] == stats["rows_kept"] + stats["rows_rejected"]
        assert (kept.height, rejected.height) == (stats["rows_kept"], stats["rows_rejected"])
        assert sum(stats["dropped"].values()) == stats["rows_rejected"]
        assert set(rejected["drop_reason"].unique()) == {r for r, n in stats["dropped"].items() if n}
    alpaca = json.loads((workdir / "results/data/knowledge/demo_alpaca/stats.json").read_text())
    # the demo's deliberate dirt reaches the filters it was written for
    for reason in ("exact_duplicate", "near_duplicate", "english_context", "mojibake", "empty_turn", "low_cjk_share"):
        assert alpaca["dropped"][reason] > 0, reason
    train = pl.read_parquet(workdir / "results/data/knowledge/train.parquet")
    assert set(train["source"].unique()) == {"demo_alpaca", "demo_dialogues", "demo_refgpt"}
    assert train["id"].n_unique() == train.height


def test_unchanged_rerun_does_nothing(workdir):
    assert planned(workdir) == {}


def test_editing_one_source_reruns_only_it(workdir):
    path = workdir / "demo/data/knowledge_refgpt.jsonl"
    before = pl.read_parquet(workdir / "results/data/knowledge/train.parquet")
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"reference": "", "dialogue": "Human: 端午节吃什么？ Assistant: 端午节吃粽子。"},
                           ensure_ascii=False) + "\n")
    assert planned(workdir) == {"clean_source": 1, "mix": 1}
    snakemake(workdir, *TARGETS)
    after = pl.read_parquet(workdir / "results/data/knowledge/train.parquet")
    assert after.height == before.height + 1
    # ids are stable: every earlier row keeps its id
    assert set(before["id"]) <= set(after["id"])
    assert planned(workdir) == {}


def test_changing_a_threshold_reruns_the_affected_cleaning(workdir):
    (workdir / "stricter.yaml").write_text("clean: {cjk: {min_share: 0.5}}\n")
    assert planned(workdir, "--configfile", "config.yaml", "stricter.yaml") == {"clean_source": 4, "mix": 2}
    # a per-source override touches only that source
    (workdir / "one.yaml").write_text(
        "data:\n  safety:\n    - {name: demo_safety, path: demo/data/safety_prompts.json, format: safety_prompts,"
        " clean: {cjk: {min_share: 0.5}}}\n")
    assert planned(workdir, "--configfile", "config.yaml", "one.yaml") == {"clean_source": 1, "mix": 1}


def test_unknown_config_key_fails_before_any_job(workdir):
    out = snakemake_fails(workdir, "-n", "--config", "train={\"nodes\": \"many\"}")
    assert "'many' is not of type 'integer'" in out


# issue 16: after a finished run a mistyped path must stop the run, not answer "Nothing to be done"
TYPOS = {
    "base_model": ("base_model: models/nope", "models/nope: no such directory"),
    "data.knowledge[0].path": (
        "data:\n  knowledge:\n    - {name: demo_alpaca, path: demo/data/knowledge_alpacaX.json, format: alpaca}",
        "demo/data/knowledge_alpacaX.json: no such file"),
    "data.knowledge[0].decisions": (
        "data:\n  knowledge:\n    - {name: demo_alpaca, path: demo/data/knowledge_alpaca.json, decisions: dec.csv}",
        "dec.csv: no such file"),
    "eval.knowledge.path": ("eval:\n  knowledge: {path: demo/eval/knowledge.json}\n  safety:\n"
                            "    mcq: {path: demo/eval/mcq.jsonl}\n    risky: [{path: demo/eval/risky.json}]",
                            "demo/eval/knowledge.json: no such file"),
    "eval.safety.mcq.answer_key": ("eval:\n  knowledge: {path: demo/eval/knowledge.jsonl}\n  safety:\n"
                                   "    mcq: {path: demo/eval/mcq.jsonl, answer_key: demo/eval/key.json}\n"
                                   "    risky: [{path: demo/eval/risky.json}]", "demo/eval/key.json: no such file"),
    "clean.english_context.rules": ("clean: {english_context: {rules: rules.yml}}", "rules.yml: no such file"),
    "train.deepspeed": ("train: {deepspeed: zero1.json}", "zero1.json: no such file"),
}


@pytest.mark.parametrize("key", TYPOS)
def test_a_mistyped_path_stops_the_run_and_changes_nothing(workdir, key):
    override, problem = TYPOS[key]
    (workdir / "typo.yaml").write_text(override + "\n")
    before = snapshot(workdir)
    out = snakemake_fails(workdir, *TARGETS, "--configfile", "config.yaml", "typo.yaml")
    assert f"config paths (relative ones resolved against {workdir}):" in out
    assert f"  {key}: {problem}" in out
    assert snapshot(workdir) == before


def test_review_decisions_round_trip(workdir):
    """Export a review sheet, reject two rows, list the file: only that source is cleaned again, the two
    rows land in rejected.parquet as human_rejected; editing the decisions file reruns only it again."""
    snakemake(workdir, "results/data/knowledge/demo_dialogues/review.csv")
    sheet = pl.read_csv(workdir / "results/data/knowledge/demo_dialogues/review.csv")
    decisions = workdir / "decisions.csv"
    sheet.head(2).with_columns(decision=pl.lit("reject")).write_csv(decisions)
    (workdir / "reviewed.yaml").write_text(
        "data:\n  knowledge:\n"
        "    - {name: demo_alpaca, path: demo/data/knowledge_alpaca.json, format: alpaca}\n"
        "    - {name: demo_dialogues, path: demo/data/knowledge_dialogues.jsonl, format: sharegpt,"
        " decisions: decisions.csv}\n"
        "    - {name: demo_refgpt, path: demo/data/knowledge_refgpt.jsonl}\n")
    args = ("--configfile", "config.yaml", "reviewed.yaml")
    assert planned(workdir, *args) == {"clean_source": 1, "mix": 1}
    snakemake(workdir, *TARGETS, *args)
    rejected = pl.read_parquet(workdir / "results/data/knowledge/demo_dialogues/rejected.parquet")
    human = rejected.filter(pl.col("drop_reason") == "human_rejected")
    assert sorted(human["id"]) == sorted(sheet["id"].head(2))
    assert planned(workdir, *args) == {}
    sheet.head(3).with_columns(decision=pl.lit("reject")).write_csv(decisions)
    assert planned(workdir, *args) == {"clean_source": 1, "mix": 1}


def test_snakemake_lint_is_clean(repo_root, tmp_path):
    out = snakemake(copy_workflow(repo_root, tmp_path), "--lint")
    assert "Congratulations, your workflow is in a good condition!" in out, out
