# Included first by the Snakefile and shared by all rule files. It holds the config validation, the
# environment jobs run in, and the input functions and helpers of the rule files (no rules).
import os
import re
import sys

from snakemake.utils import validate

# 1. The config: schema (fills defaults; an unknown key or a wrong type stops here), then what a schema
# cannot say: unique source names, each source's merged `clean` block, and every configured path.
validate(config, "../config.schema.yaml")
# This checkout's culturalign package, for this file and for every job, also inside the per-rule conda
# environments of envs/ (`--sdm conda`), which install only third-party packages.
if workflow.basedir not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")])))
sys.path.insert(0, workflow.basedir)
import culturalign.loop.decisions as loop_lib
import culturalign.loop.remedies as remedies_lib
import culturalign.loop.workflow as wf
from culturalign.io import read_json

wf.check_unique_sources(config)
wf.check_guard(config)
wf.check_remedies(config)
REMEDIES = wf.remedies(config)
for _stage in wf.STAGES:
    for _src in config["data"][_stage]:
        if _src["clean"]:
            validate(config | {"clean": wf.clean_config(config, _stage, _src["name"])}, "../config.schema.yaml")
# A mistyped path must stop the run: Snakemake would keep old results whose outputs exist.
wf.check_paths(config, os.getcwd())


# Reference models (`compare:`): evaluated like ours, shown as reference rows, never in a loop.
REFERENCES = wf.references(config)


wildcard_constraints:
    stage="knowledge|safety",
    source=r"[A-Za-z0-9_.-]+",
    shard=r"\d+",
    evalset="knowledge|mcq|risky",
    model="|".join([r"base|kg_r\d+|safe_r\d+", *map(re.escape, REFERENCES)]),


# 2. Data stage. A source's files (a glob or directory is several) are inputs, so editing one reruns it.
from culturalign.data import shards as shards_lib
from culturalign.data.readers import source_files


def shard_count(stage, name):
    """Shards of a source: its bytes on disk over clean.shard_size (1 when unset or cleaned with an LLM)."""
    cfg = wf.clean_config(config, stage, name)
    return shards_lib.shard_count(wf.source(config, stage, name)["path"], cfg["shard_size"],
                                  llm=shards_lib.uses_llm(cfg, config["refine"]))


def shard_dir(wc, i):
    return f"results/data/{wc.stage}/{wc.source}/shards/{i}"


def shard_inputs(wc):
    """What the per-row filters of a source (one job or one shard) read."""
    src = wf.source(config, wc.stage, wc.source)
    inputs = {
        "source": [str(f) for f in source_files(src["path"], src["name"])],
        "rules": wf.english_rules(wf.clean_config(config, wc.stage, wc.source)),
        "eval_sets": [s["path"] for s in wf.eval_sets(config)],
    }
    if src.get("decisions"):
        inputs["decisions"] = src["decisions"]
    return inputs


def shard_state_inputs(wc):
    n = range(shard_count(wc.stage, wc.source))
    return {part: [f"{shard_dir(wc, i)}/{part}.{ext}" for i in n]
            for part, ext in (("state", "json"), ("alive", "parquet"), ("sig32", "bin"), ("bands", "bin"),
                              ("hashes", "bin"), ("grams", "bin"))}


def clean_inputs(wc):
    """One job: the source itself; sharded: what the shard jobs left (merged by clean_source)."""
    n = range(shard_count(wc.stage, wc.source))   # globs and stats the source's files: once
    if len(n) == 1:
        return shard_inputs(wc)
    return {"kept": [f"{shard_dir(wc, i)}/kept.parquet" for i in n],
            "duplicates": [f"{shard_dir(wc, i)}/duplicates.parquet" for i in n],
            "rejected": [f"{shard_dir(wc, i)}/rejected.parquet" for i in n],
            "state": [f"{shard_dir(wc, i)}/state.json" for i in n],
            "decisions": f"results/data/{wc.stage}/{wc.source}/shards/decisions.npz"}


def mix_inputs(wc):
    return expand("results/data/{stage}/{source}/clean.parquet", stage=wc.stage,
                  source=wf.source_names(config, wc.stage))


# 3. Evaluation: the files of each evaluation set ({path, format, limit}; risky may have several).
EVALSETS = {
    "knowledge": lambda: [config["eval"]["knowledge"]],
    "mcq": lambda: [config["eval"]["safety"]["mcq"]],
    "risky": lambda: config["eval"]["safety"]["risky"],
}


def generate_inputs(wc):
    inputs = {"sets": [s["path"] for s in EVALSETS[wc.evalset]()]}
    model_dir = wf.model_path(config, wc.model)
    if model_dir is not None:  # a reference model behind an endpoint has no directory
        inputs["model"] = model_dir
    return inputs


def safety_score_inputs(wc):
    inputs = {
        "mcq": f"results/generations/{wc.model}/mcq.parquet",
        "risky": f"results/generations/{wc.model}/risky.parquet",
    }
    answer_key = config["eval"]["safety"]["mcq"].get("answer_key")
    if answer_key:
        inputs["answer_key"] = answer_key
    return inputs


# 4. The loops (DESIGN.md diagram), built from the score checkpoints: asking for a score that does not
# exist yet schedules its evaluation; once it exists the loop decides whether the next round is needed.
# No Python loop runs training: the DAG grows one round at a time.
def score_of(stage, model):
    score_rule = checkpoints.score_knowledge if stage == "knowledge" else checkpoints.score_safety
    return read_json(score_rule.get(model=model).output[0])


def guard_of(model):
    return read_json(checkpoints.score_guard.get(model=model).output.scores)


def round_files(stage, model):
    """The score files a round's decision reads: its stage score, and with a loop guard its guard.json
    (when eval.guard has sets) and its knowledge.json (the guard's `knowledge` measure)."""
    files = {"score": f"results/scores/{model}/{stage}.json"}
    if wf.loop_guard(config):
        if config["eval"]["guard"]:
            files["guard"] = f"results/scores/{model}/guard.json"
        files["knowledge"] = f"results/scores/{model}/knowledge.json"
    return files


def round_of(stage, model):
    guard = wf.loop_guard(config)
    return loop_lib.round_record(
        score_of(stage, model),
        guard=guard_of(model) if guard and config["eval"]["guard"] else None,
        knowledge=score_of("knowledge", model) if guard else None,
    )


def loop_models(stage):
    cfg = config["loop"][stage]
    start = "base" if stage == "knowledge" else selected_model("knowledge")
    return loop_lib.walk(start, wf.PREFIX[stage], cfg["max_rounds"], cfg["target"], lambda m: round_of(stage, m),
                         wf.loop_guard(config), config["judge"]["max_failed"])


def selected_model(stage):
    rounds = [round_of(stage, m) for m in loop_models(stage)]
    return loop_lib.summarize(rounds, config["loop"][stage]["target"], wf.loop_guard(config),
                              config["judge"]["max_failed"])["selected"]


def loop_summary_inputs(wc):
    files = [round_files(wc.stage, m) for m in loop_models(wc.stage)]
    inputs = {kind: [f[kind] for f in files] for kind in files[0]}
    if wc.stage == "safety":
        inputs["pairs"] = [r["pairs"] for r in remedy_rounds().values() if r["pairs"]]
    return inputs


# 5. Training. A safety round after a round that broke the guard or missed the target applies a remedy
# (loop.safety.remedies), chosen from the previous rounds' score files (culturalign.loop.remedies.plan).
def previous_of(model):
    return wf.previous_model(model, lambda: selected_model("knowledge"))


def remedy_of(model):
    """{remedy, entry, because, settings (the loop.safety.remedies entry, None for a plain round)} of a round."""
    if wf.stage_of(model) == "knowledge" or wf.round_of(model) == 1 or not REMEDIES:
        return {"remedy": remedies_lib.SFT, "entry": None, "for": [], "settings": None,
                "because": "first round of the loop, or no loop.safety.remedies: supervised tuning on the stage's mix"}
    models = [selected_model("knowledge"), *[f"safe_r{k}" for k in range(1, wf.round_of(model))]]
    judged = loop_lib.judge_rounds([round_of("safety", m) for m in models], config["loop"]["safety"]["target"],
                                   wf.loop_guard(config), config["judge"]["max_failed"])
    choice = remedies_lib.plan(judged, REMEDIES)[-1]
    return {**choice, "settings": REMEDIES[choice["entry"]] if choice["entry"] is not None else None}


def remedy_name(model):
    return (remedy_of(model)["settings"] or {}).get("name")


def train_inputs(wc):
    previous, remedy = previous_of(wc.model), remedy_name(wc.model)
    data = f"results/data/{wf.stage_of(wc.model)}/train.parquet"
    if remedy in ("replay", "contrast"):
        data = f"results/data/safety/train_{wc.model}.parquet"
    elif remedy in remedies_lib.PREFERENCE:
        data = f"results/data/safety/pairs_{previous}.parquet"
    return {"model": wf.model_path(config, previous), "data": data}


def remedy_mix_inputs(wc):
    extra = {"replay": "results/data/knowledge/train.parquet",
             "contrast": f"results/data/safety/{wf.CONTRAST}/clean.parquet"}[remedy_name(wc.model)]
    return {"safety": "results/data/safety/train.parquet", "extra": extra}


def pairs_inputs(wc):
    inputs = {"model": wf.model_path(config, wc.model), "safety": "results/data/safety/train.parquet"}
    if wf.contrast_source(config):
        inputs["benign"] = f"results/data/safety/{wf.CONTRAST}/clean.parquet"
    return inputs


def remedy_rounds():
    """{model: its remedy and why, and the pairs accounting file of a preference round} of the safety loop."""
    rounds = {}
    for m in loop_models("safety"):
        if wf.MODEL_RE.match(m) and wf.stage_of(m) == "safety":
            remedy = remedy_of(m)
            pairs = (f"results/data/safety/pairs_{previous_of(m)}.json"
                     if (remedy["settings"] or {}).get("name") in remedies_lib.PREFERENCE else None)
            rounds[m] = {k: remedy[k] for k in ("remedy", "for", "because")} | {"pairs": pairs}
    return rounds


# 6. Report: base vs the knowledge loop's pick vs the safety loop's pick (the paper's three columns).
def compared_models():
    return {"base": "base", "kg": selected_model("knowledge"), "safe": selected_model("safety")}


def trained_models():
    return [m for stage in wf.STAGES for m in loop_models(stage) if m != "base" and wf.MODEL_RE.match(m)]


def evaluated():
    """(model, stage) of every score file of this run: each loop's rounds and the three compared models."""
    pairs = {(m, stage) for stage in wf.STAGES for m in loop_models(stage)}
    pairs |= {(m, stage) for m in [*compared_models().values(), *REFERENCES] for stage in wf.STAGES}
    if wf.loop_guard(config):  # the guard's knowledge measure is read for every safety round too
        pairs |= {(m, "knowledge") for m in loop_models("safety")}
    return sorted(pairs)


def guarded():
    """Every model whose guard.json this run writes: each loop's rounds and the compared models."""
    if not config["eval"]["guard"]:
        return []
    local_refs = {name for name in REFERENCES if wf.model_path(config, name)}   # log-likelihoods need the weights
    return sorted({m for stage in wf.STAGES for m in loop_models(stage)} | set(compared_models().values()) | local_refs)


EVALSETS_OF_STAGE = {"knowledge": ("knowledge",), "safety": ("mcq", "risky")}


def timed_jobs():
    """{job name: its `benchmark:` file} for every job of this run the report lists (all but itself)."""
    jobs = {f"clean_source/{stage}/{name}": None for stage in wf.STAGES for name in wf.source_names(config, stage)}
    jobs |= {f"mix/{stage}": None for stage in wf.STAGES}
    if config["base_model"] == "tiny":
        jobs["build_tiny/build_tiny"] = None
    for model, stage in evaluated():
        jobs |= {f"generate/{model}/{evalset}": None for evalset in EVALSETS_OF_STAGE[stage]}
        jobs[f"score_{stage}/{model}"] = None
    jobs |= {f"score_guard/{m}": None for m in guarded()}
    jobs |= {f"train/{m}": None for m in trained_models()}
    for m in remedy_rounds():
        name = remedy_name(m)
        if name in ("replay", "contrast"):
            jobs[f"remedy_mix/{m}"] = None
        if name in remedies_lib.PREFERENCE:
            jobs[f"preference_pairs/{previous_of(m)}"] = None
        if name == "contrast" or (name in remedies_lib.PREFERENCE and wf.contrast_source(config)):
            jobs[f"clean_source/safety/{wf.CONTRAST}"] = None
    jobs |= {f"loop_summary/{stage}": None for stage in wf.STAGES}
    return {job: f"benchmarks/{job}.tsv" for job in jobs}


def llm_usage():
    """{job name: the usage file it writes when it calls an LLM} (the files exist only after LLM calls)."""
    usage = {f"clean_source/{stage}/{name}.json": f"results/llm/clean_source/{stage}/{name}.json"
             for stage in wf.STAGES for name in wf.source_names(config, stage)}
    for model, stage in evaluated():
        usage[f"score_{stage}/{model}.json"] = f"results/llm/score_{stage}/{model}.json"
        usage |= {f"generate/{model}/{e}.json": f"results/llm/generate/{model}/{e}.json" for e in EVALSETS_OF_STAGE[stage]}
        if stage == "safety":
            usage[f"score_safety/{model}_silver.json"] = f"results/llm/score_safety/{model}_silver.json"
    usage |= {f"score_guard/{m}.json": f"results/llm/score_guard/{m}.json" for m in guarded()}
    usage |= {f"preference_pairs/{previous_of(m)}.json": f"results/llm/preference_pairs/{previous_of(m)}.json"
              for m, r in remedy_rounds().items() if r["pairs"]}
    return usage


def report_inputs(wc):
    models = sorted(set(compared_models().values()) | set(REFERENCES))
    guards = sorted(set(guarded()) & set(models))
    return {
        "loops": expand("results/loop/{stage}.json", stage=wf.STAGES),
        "scores": expand("results/scores/{model}/{evalset}.json", model=models, evalset=("knowledge", "safety")),
        "guards": [f"results/scores/{m}/guard.json" for m in guards],
        "stats": [
            f"results/data/{stage}/{name}/stats.json" for stage in wf.STAGES for name in wf.source_names(config, stage)
        ],
        "rejected": [
            f"results/data/{stage}/{name}/rejected.parquet" for stage in wf.STAGES
            for name in wf.source_names(config, stage)
        ],
        "models": [wf.model_path(config, m) for m in trained_models()],
        "timings": list(timed_jobs().values()),
    }
