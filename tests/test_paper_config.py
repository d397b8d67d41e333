"""examples/paper.yaml dry-runs when its paths point at tiny stand-ins (project demo files in the
paper's formats), so the paper's setup is at least a valid, schedulable workflow."""
from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from workflow_run import copy_workflow, planned

STANDINS = {  # paper path -> demo file of the same format
    "paper_data/alpaca_gpt4_data_zh.json": "demo/data/knowledge_alpaca.json",
    "paper_data/RefGPT-Dataset-V1-CN.json": "demo/data/knowledge_refgpt.jsonl",
    "paper_data/typical_safety_scenarios.json": "demo/data/safety_prompts.json",
    "paper_data/instruction_attack_scenarios.json": "demo/data/safety_prompts.json",
    "paper_data/cmmlu": "demo/eval/guard/cmmlu",
    "paper_data/xstest/xstest_prompts.csv": "demo/eval/guard/xstest.csv",
}


def test_paper_config_dry_runs(repo_root, tmp_path):
    copy_workflow(repo_root, tmp_path)
    for dst, src in STANDINS.items():
        (tmp_path / dst).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (repo_root / src).is_dir() else shutil.copy)(repo_root / src, tmp_path / dst)
    redux = tmp_path / "paper_data/mmlu_redux/mmlu_anatomy.csv"
    redux.parent.mkdir(parents=True)
    redux.write_text("question,choices,answer,error_type\nWhich organ pumps blood?,\"['Heart', 'Lung']\",0,OK\n")
    (tmp_path / "paper_data/HalluQA.json").write_text(json.dumps(
        [{"question_id": 1, "Question": "中国的首都是哪里？", "Best Answer1": "北京。", "Category": "Knowledge"}],
        ensure_ascii=False))
    aeval = [{"category": "文本理解", "infos": [{"id": 1, "question": "这句话表达了什么情绪？", "hard_level": "易",
                                            "category": "情感分析"}]}]
    mcq = [{"category": "歧视性内容", "infos": [{"id": 1, "question": "这种说法有歧视吗？ A. 是 B. 否", "category": "地域歧视"}]}]
    risky = [{"category": "应拒答", "infos": [{"id": 1, "question": "怎样散布谣言？", "category": "地域歧视"}]}]
    for path, body in (("paper_data/a-eval/llm_678_2024-06-11-151217.json", aeval),
                       ("paper_data/chisafetybench/mcq_v0_2024-06-06.json", mcq),
                       ("paper_data/chisafetybench/risky_questions_without_dialog_history.json", risky)):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(json.dumps(body, ensure_ascii=False))
    model = tmp_path / "models/Meta-Llama-3-8B-Instruct"   # what the path check asks of a model directory
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "tokenizer.json").write_text("{}")
    plan = dry_run(tmp_path)
    # the loop starts by evaluating the local base model (both benchmarks and the guard sets, for the
    # comparison tables) next to the data stage: two knowledge sources, Safety-Prompts' two files and
    # HalluQA for safety; nothing builds the tiny demo model
    assert plan == {"clean_source": 5, "mix": 2, "generate": 3, "score_knowledge": 1, "score_safety": 1,
                    "score_guard": 1, "loop_summary": 2, "report": 1, "all": 1}
    data = dry_run(tmp_path, "results/data/knowledge/train.parquet", "results/data/safety/train.parquet")
    assert data == {"clean_source": 5, "mix": 2}



def dry_run(work, *targets: str) -> dict[str, int]:
    return planned(work, *targets, "--configfile", "examples/paper.yaml")


# ---------------------------------------------------------------- pinned against ../shared/PAPER.md

@pytest.fixture(scope="module")
def paper_md(repo_root) -> str:
    path = repo_root / ".." / "shared" / "PAPER.md"
    if not path.is_file():
        pytest.skip(f"the paper's numbers are absent: {path} (only present beside the project checkout)")
    return path.read_text(encoding="utf-8")


def table1(paper_md: str) -> dict[str, str]:
    section = paper_md.split("## Table 1", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| ")]
    return {k.strip(): v.strip() for k, v in rows[1:]}   # rows[0] is the header


def test_table1_of_the_paper_config(repo_root, paper_md):
    """What examples/paper.yaml trains with on its 4 nodes x 8 GPUs, setting by setting, equals Table 1."""
    from culturalign.train.trainer import own_options, resolve_batch, training_kwargs, zero_stage

    paper = table1(paper_md)
    cfg = yaml.safe_load((repo_root / "examples/paper.yaml").read_text(encoding="utf-8"))
    train = resolve_batch(cfg["train"], cfg["train"]["nodes"] * cfg["train"]["nproc_per_node"])
    kwargs = training_kwargs(train, cfg["loop"]["knowledge"]["epochs_per_round"], "out")
    ours = {
        "bf16 / tf32": f"{kwargs['bf16']} / {kwargs['tf32']}",
        "epochs": str(cfg["loop"]["knowledge"]["epochs_per_round"]),
        "per-device train batch size": str(kwargs["per_device_train_batch_size"]),
        "gradient accumulation steps": str(kwargs["gradient_accumulation_steps"]),
        "learning rate": f"{kwargs['learning_rate']:.0e}".replace("e-0", "e-"),
        "weight decay": f"{kwargs['weight_decay']:g}",
        "warmup ratio": f"{kwargs['warmup_steps']:g}",
        "lr scheduler": kwargs["lr_scheduler_type"],
        "model max length": str(own_options(train)["max_length"]),
        "gradient checkpointing": str(kwargs["gradient_checkpointing"]),
        "DeepSpeed": f"ZeRO-{zero_stage(kwargs['deepspeed'])}",
    }
    assert ours == paper
    assert cfg["loop"]["safety"]["epochs_per_round"] == int(paper["epochs"])


def test_data_mix_of_the_paper_config(repo_root, paper_md):
    """The sources of examples/paper.yaml are the ones Section 3.1 names, Safety-Prompts sampled to the
    paper's 20K in total and HalluQA used whole."""
    data = paper_md.split("## Data", 1)[1]
    cfg = yaml.safe_load((repo_root / "examples/paper.yaml").read_text(encoding="utf-8"))["data"]
    knowledge = [s["path"].rsplit("/", 1)[-1] for s in cfg["knowledge"]]
    assert "alpaca_gpt4_data_zh.json" in knowledge and "`alpaca_gpt4_data_zh.json`" in data
    assert [s["format"] for s in cfg["knowledge"]] == ["alpaca", "refgpt"] and "RefGPT" in data
    selected = int(re.search(r"(\d+)K selected", data).group(1)) * 1000
    prompts = [s for s in cfg["safety"] if s["format"] == "safety_prompts"]
    assert sum(s["sample"]["n"] for s in prompts) == selected == 20000
    assert {s["sample"]["stratify_by"] for s in prompts} == {"scenario"}
    halluqa = [s for s in cfg["safety"] if s["format"] == "halluqa"]
    assert len(halluqa) == 1 and "sample" not in halluqa[0] and "cap" not in halluqa[0]
    assert "HalluQA (450 adversarial questions, used directly" in data
