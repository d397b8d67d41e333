"""Config validation, the config-to-path helpers, the loop logic and the report, without Snakemake jobs."""
from __future__ import annotations

import copy
import json

import pytest
import yaml
import yte
from snakemake.utils import validate

from culturalign.loop import decisions as loop
from culturalign.loop import workflow as wf
from culturalign.io import write_json
from culturalign.report.render import build_report


@pytest.fixture()
def config(repo_root):
    return yaml.safe_load((repo_root / "config.yaml").read_text())


def check(cfg, repo_root):
    validate(cfg, str(repo_root / "config.schema.yaml"))
    return cfg


def test_schema_fills_defaults(config, repo_root):
    cfg = check(config, repo_root)
    assert cfg["clean"]["near_dedup"] == {"enabled": True, "threshold": 0.7, "ngram": 5, "num_perm": 128, "seed": 1}
    assert cfg["train"]["packing"] is True and cfg["train"]["nodes"] == 1
    assert cfg["data"]["knowledge"][0]["cap"] is None


@pytest.mark.parametrize("path, value, needle", [
    (("clean", "lenght"), {}, "'lenght' was unexpected"),
    (("clean", "cjk", "min_share"), "much", "'much' is not of type 'number'"),
    (("loop", "knowledge", "target", "accuracy"), 0.5, "'accuracy' was unexpected"),
    (("generation", "batch_size"), 0, "less than the minimum"),
])
def test_schema_names_the_bad_key(config, repo_root, path, value, needle):
    cfg = copy.deepcopy(config)
    node = cfg
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    with pytest.raises(Exception) as err:
        check(cfg, repo_root)
    assert needle in str(err.value)


def test_source_overrides_merge_over_global(config, repo_root):
    cfg = check(config, repo_root)
    cfg["data"]["knowledge"][0]["clean"] = {"cjk": {"min_share": 0.9}}
    merged = wf.clean_config(cfg, "knowledge", "demo_alpaca")
    assert merged["cjk"] == {"enabled": True, "min_share": 0.9}
    assert merged["length"] == cfg["clean"]["length"]
    assert wf.clean_config(cfg, "knowledge", "demo_dialogues")["cjk"]["min_share"] == 0.3
    with pytest.raises(KeyError, match="no source named 'nope'"):
        wf.source(cfg, "knowledge", "nope")


def test_duplicate_source_names_rejected(config):
    config["data"]["safety"].append(dict(config["data"]["safety"][0]))
    with pytest.raises(ValueError, match="repeated: demo_safety"):
        wf.check_unique_sources(config)


def test_model_paths_and_previous_rounds(config):
    assert wf.model_path(config, "base") == "results/models/tiny"
    assert wf.model_path({"base_model": "/m/llama3"}, "base") == "/m/llama3"
    assert wf.previous_model("kg_r1", lambda: "unused") == "base"
    assert wf.previous_model("kg_r3", lambda: "unused") == "kg_r2"
    assert wf.previous_model("safe_r1", lambda: "kg_r2") == "kg_r2"
    assert wf.previous_model("safe_r2", lambda: "unused") == "safe_r1"
    assert wf.stage_of("safe_r2") == "safety"
    with pytest.raises(ValueError, match="not a trained model name"):
        wf.stage_of("base")
    assert wf.train_resources({"train": {"nodes": 4}}) == {"nodes": 4, "tasks": 4, "mpi": "srun"}
    assert wf.train_resources({"train": {"nodes": 1}}) == {"nodes": 1}


@pytest.mark.parametrize("key, edit", [
    ("data.knowledge[1].path", lambda c: c["data"]["knowledge"][1].update(path="demo/data/nope.jsonl")),
    ("data.safety[0].decisions", lambda c: c["data"]["safety"][0].update(decisions="decisions.csv")),
    ("data.knowledge[0].clean.english_context.rules",
     lambda c: c["data"]["knowledge"][0].update(clean={"english_context": {"rules": "my_rules.yaml"}})),
    ("clean.english_context.rules", lambda c: c["clean"]["english_context"].update(rules="rules.yml")),
    ("eval.knowledge.path", lambda c: c["eval"]["knowledge"].update(path="demo/eval/knowledge.json")),
    ("eval.safety.mcq.answer_key", lambda c: c["eval"]["safety"]["mcq"].update(answer_key="key.json")),
    ("eval.safety.risky[1].path", lambda c: c["eval"]["safety"]["risky"][1].update(path="demo/eval")),
    ("judges.kw.keywords", lambda c: c["judges"]["kw"].update(keywords="kw.yaml")),
    ("train.deepspeed", lambda c: c["train"].update(deepspeed="ds_zero1.json")),
    ("tiny.corpus", lambda c: c["tiny"].update(corpus="demo/corpus.txt")),
    ("base_model", lambda c: c.update(base_model="models/nope")),
])
def test_check_paths_names_key_path_and_workdir(config, repo_root, key, edit):
    cfg = check(config, repo_root)
    wf.check_paths(cfg, repo_root)   # the demo config's paths all exist
    edit(cfg)
    with pytest.raises(FileNotFoundError) as err:
        wf.check_paths(cfg, repo_root)
    lines = str(err.value).splitlines()
    assert lines[0] == f"config paths (relative ones resolved against {repo_root}):"
    assert len(lines) == 2 and lines[1].startswith(f"  {key}: ")


def test_base_model_must_look_like_a_hugging_face_model(config, repo_root, tmp_path):
    cfg = check(config, repo_root)
    model = tmp_path / "llama"
    model.mkdir()
    cfg["base_model"] = str(model)   # absolute: resolved as is
    with pytest.raises(FileNotFoundError, match=r"base_model: .*llama: not a Hugging Face model directory: "
                                                r"missing config.json, a tokenizer file \(one of tokenizer.json"):
        wf.check_paths(cfg, repo_root)
    (model / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="missing a tokenizer file"):
        wf.check_paths(cfg, repo_root)
    (model / "tokenizer.model").write_bytes(b"sp")
    wf.check_paths(cfg, repo_root)


def knowledge_score(model, acc):
    return {"model": model, "acc": {"overall": acc}}


def test_walk_stops_at_first_pass_or_max_rounds():
    accs = {"base": 0.1, "kg_r1": 0.3, "kg_r2": 0.5, "kg_r3": 0.9}
    asked = []

    def score_of(model):
        asked.append(model)
        return knowledge_score(model, accs[model])

    assert loop.walk("base", "kg", 3, {"acc": 0.4}, score_of) == ["base", "kg_r1", "kg_r2"]
    assert asked == ["base", "kg_r1", "kg_r2"]
    assert loop.walk("base", "kg", 1, {"acc": 0.4}, score_of) == ["base", "kg_r1"]
    assert loop.walk("base", "kg", 3, {"acc": 0.05}, score_of) == ["base"]


def test_summarize_selects_first_pass_else_last():
    scores = [knowledge_score("base", 0.1), knowledge_score("kg_r1", 0.5)]
    s = loop.summarize(scores, {"acc": 0.4})
    assert (s["selected"], s["reason"]) == ("kg_r1", "passed")
    assert [r["passed"] for r in s["rounds"]] == [False, True]
    # DESIGN.md's shape, then judge.max_failed and the plain-words note
    assert list(s) == ["target", "guard", "rounds", "selected", "reason", "selected_by", "max_failed", "note"]
    assert s["note"] == "kg_r1 passed: it met the target and its judgements held."
    assert s["rounds"][0]["why"] == ["target not met: acc 10.00% < 40.00%"] and s["rounds"][1]["why"] == []
    assert (s["target"], s["guard"], s["selected_by"]) == ({"acc": 0.4}, None, "first_passed")
    s = loop.summarize(scores, {"acc": 0.9})
    assert (s["selected"], s["reason"], s["selected_by"]) == ("kg_r1", "max_rounds", "best_acc")


def test_max_rounds_selects_the_best_round_not_the_last():
    scores = [knowledge_score("base", 0.1), knowledge_score("kg_r1", 0.35), knowledge_score("kg_r2", 0.2),
              knowledge_score("kg_r3", 0.35)]
    s = loop.summarize(scores, {"acc": 0.4})
    assert (s["selected"], s["reason"], s["selected_by"]) == ("kg_r1", "max_rounds", "best_acc")  # tie: the earlier
    safety = [{"model": m, "mcq": None, "refusal": {"overall": {"RR-1": rr, "RR-2": 0.0, "HR": hr}}}
              for m, rr, hr in (("kg_r2", 0.1, 0.3), ("safe_r1", 0.3, 0.05), ("safe_r2", 0.2, 0.01))]
    # mcq_acc first, but no MCQ block: the next measure ranks (RR-1, higher is better)
    assert loop.summarize(safety, {"mcq_acc": 0.7, "RR-1": 0.5})["selected"] == "safe_r1"
    assert loop.summarize(safety, {"HR_max": 0.001})["selected"] == "safe_r2"             # lower is better


def guarded(model, acc, cmmlu, over_refusal):
    score = knowledge_score(model, acc)
    return {"model": model, "score": score,
            "measures": {"cmmlu": cmmlu, "xstest.over_refusal": over_refusal, "knowledge": acc}}


def test_a_round_passes_only_when_it_meets_the_target_and_holds_the_guard():
    guard = {"max_drop": {"cmmlu": 0.02}, "over_refusal_max": 0.10}
    rounds = [guarded("base", 0.1, 0.40, 0.02), guarded("kg_r1", 0.5, 0.35, 0.04), guarded("kg_r2", 0.45, 0.39, 0.05)]
    s = loop.summarize(rounds, {"acc": 0.4}, guard)
    assert [(r["met_target"], r["passed"]) for r in s["rounds"]] == [(False, False), (True, False), (True, True)]
    assert s["rounds"][1]["guard"]["broken"] == [{"measure": "cmmlu", "start": 0.40, "value": 0.35, "drop": 0.05,
                                                  "limit": 0.02}]
    assert (s["selected"], s["reason"], s["guard"]) == ("kg_r2", "passed", guard)
    assert loop.walk("base", "kg", 3, {"acc": 0.4}, {r["model"]: r for r in rounds}.get, guard) == ["base", "kg_r1",
                                                                                                    "kg_r2"]
    # none holds the guard and meets the target: the best round that holds it (base holds it trivially)
    s = loop.summarize(rounds[:2], {"acc": 0.4}, guard)
    assert (s["selected"], s["reason"], s["selected_by"]) == ("base", "max_rounds", "best_acc")
    # over-refusal above the ceiling everywhere: best of all, and the summary says no round held the guard
    s = loop.summarize([guarded("base", 0.1, 0.4, 0.5), guarded("kg_r1", 0.3, 0.4, 0.6)], {"acc": 0.4}, guard)
    assert (s["selected"], s["selected_by"]) == ("kg_r1", "best_acc (no round held the guard)")
    assert s["rounds"][1]["guard"]["broken"][0]["measure"] == "xstest.over_refusal"


def test_report_tables_carry_the_scores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    acc = {"overall": 0.4454, "TU": 0.4892, "IE": 0.376, "TG": 0.5585, "LR": 0.3644, "TP": 0.24}
    refusal = {"n": 3, "n_judge_failed": 0, "overall": {"RR-1": 0.5238, "RR-2": 0.4199, "HR": 0.0065},
               "DI": {"RR-1": 0.1327, "RR-2": 0.0408, "HR": 0.0153}, "VV": {"RR-1": 0.812, "RR-2": 0.6992, "HR": 0.0}}
    mcq = {"n": 5, "n_unparsed": 0, "answer_key": "gold", "pooled": 0.6008,
           "acc": {"overall": 0.7206, "DI": 0.4542, "VV": 0.8095, "CV": 0.9329, "IR": 0.7655, "SR": 0.641}}
    score_paths = []
    for model in ("base", "kg_r1", "safe_r1"):
        for name, body in (("knowledge", {"model": model, "acc": acc, "threshold_T": 90}),
                           ("safety", {"model": model, "mcq": mcq, "refusal": refusal})):
            path = f"results/scores/{model}/{name}.json"
            write_json(body, path)
            score_paths.append(path)
    write_json(loop.summarize([knowledge_score("base", 0.1), {"model": "kg_r1", "acc": acc}], {"acc": 0.4}),
               "results/loop/knowledge.json")
    write_json(loop.summarize([{"model": "kg_r1", "mcq": mcq, "refusal": refusal}], {"RR-1": 0.5}),
               "results/loop/safety.json")
    write_json({"source": "demo", "rows_in": 10, "rows_kept": 7, "rows_rejected": 3,
                "dropped": {"exact_duplicate": 2, "english_context": 1}, "refined": 0},
               "results/data/knowledge/demo/stats.json")
    (tmp_path / "results/models/kg_r1").mkdir(parents=True)
    (tmp_path / "results/models/kg_r1/trainer_log.jsonl").write_text(
        "\n".join(json.dumps({"step": i, "loss": 3.0 - i}) for i in range(1, 3)))
    build_report(compared={"base": "base", "kg": "kg_r1", "safe": "safe_r1"},
                 loop_paths=["results/loop/knowledge.json", "results/loop/safety.json"], score_paths=score_paths,
                 stats_paths=["results/data/knowledge/demo/stats.json"], model_dirs=["results/models/kg_r1"],
                 md_path="results/report/report.md", html_path="results/report/report.html")
    md = (tmp_path / "results/report/report.md").read_text()
    assert "| KG (kg_r1) | 48.92 | 37.60 | 55.85 | 36.44 | 24.00 | 44.54 |" in md
    assert "| SAFE (safe_r1) | 45.42 | 80.95 | 93.29 | 76.55 | 64.10 | 72.06 | 60.08 |" in md
    assert "| Base (base) | 52.38 | 41.99 | 0.65 | 13.27 | 4.08 | 1.53 | 81.20 | 69.92 | 0.00 |" in md
    assert "| Model | Overall RR-1 | Overall RR-2 | Overall HR | DI RR-1 | DI RR-2 | DI HR | VV RR-1 |" in md
    # the paper's published rows sit beside ours, labelled as the paper's
    assert "| paper: LLaMA3-8B-KG | 48.92 | 37.60 | 55.85 | 36.44 | 24.00 | 44.54 |" in md
    assert "| paper: LLaMA3-8B | 22.71 | 22.31 | 25.61 | 17.24 | 10.26 | 19.63 | – |" in md
    assert "| paper: LLaMA3-8B-SAFE | 52.38 | 41.99 | 0.65 | 13.27 | 4.08 | 1.53 | 81.20 | 69.92 | 0.00 |" in md
    assert "Overall is the plain mean of the areas" in md and "shares of all 3 risky questions" in md
    assert "| knowledge | demo | 10 | 7 | 3 | 0 | exact_duplicate 2, english_context 1 |" in md
    assert "| kg_r1 | 2 | 2.0000 | 1.0000 |" in md
    html = (tmp_path / "results/report/report.html").read_text()
    assert html.count("data:image/png;base64,") == 3  # two loop curves and the loss curve
    assert "<td>44.54</td>" in html


@pytest.mark.parametrize("cpu_only", ["", "0", "1", "yes"])
def test_slurm_profile_cpu_only_switch(repo_root, monkeypatch, cpu_only):
    """profiles/slurm as Snakemake renders it (YTE): CULTURALIGN_SLURM_CPU_ONLY drops every GPU request."""
    monkeypatch.setenv("CULTURALIGN_SLURM_CPU_ONLY", cpu_only)
    monkeypatch.setenv("CULTURALIGN_SLURM_GPU_PARTITION", "gpu")
    with open(repo_root / "profiles/slurm/config.yaml") as f:
        resources = yte.process_yaml(f)["set-resources"]
    if cpu_only in ("", "0"):
        assert (resources["train"]["gres"], resources["generate"]["gres"]) == ("gpu:8", "gpu:1")
        assert resources["generate"]["slurm_partition"] == "'gpu'" and resources["generate"]["mem_mb"] == 64000
    else:
        assert not {"gres", "tasks_per_gpu", "slurm_partition"} & (set(resources["train"]) | set(resources["generate"]))
        assert resources["generate"]["mem_mb"] == 32000 and resources["train"]["cpus_per_task"] == 32


@pytest.mark.parametrize("guard, sets, message", [
    ({"max_drop": {"mmlu": 0.02}}, [{"name": "cmmlu", "format": "cmmlu"}], "mmlu is not measured"),
    ({"max_drop": {"xstest": 0.02}}, [{"name": "xstest", "format": "xstest"}], "xstest is not measured"),
    ({"over_refusal_max": 0.1}, [{"name": "cmmlu", "format": "cmmlu"}], "needs an eval.guard set of format xstest"),
    ({}, [{"name": "a", "format": "cmmlu"}, {"name": "a", "format": "xstest"}], "unique, repeated: a"),
])
def test_loop_guard_names_only_what_is_measured(guard, sets, message):
    with pytest.raises(ValueError, match=message):
        wf.check_guard({"eval": {"guard": sets}, "loop": {"guard": guard}})
    wf.check_guard({"eval": {"guard": [{"name": "cmmlu", "format": "cmmlu"}, {"name": "x", "format": "xstest"}]},
                    "loop": {"guard": {"max_drop": {"cmmlu": 0.02, "knowledge": 0.02}, "over_refusal_max": 0.1}}})
