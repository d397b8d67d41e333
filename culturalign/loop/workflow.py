"""Pure helpers the rules use to turn the config into paths and parameters (config -> paths only).

Kept out of the .smk files so they are plain, importable and unit-tested: which sources a stage has,
the effective cleaning config of one source, where a model lives, which model a round starts from,
and whether every path the config names exists before any job is planned.
"""
from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any, Callable

from culturalign.util import deep_merge, package_data

STAGES = ("knowledge", "safety")
PREFIX = {"knowledge": "kg", "safety": "safe"}
STAGE_OF_PREFIX = {v: k for k, v in PREFIX.items()}
MODEL_RE = re.compile(r"^(kg|safe)_r(\d+)$")


def sources(config: dict, stage: str) -> list[dict]:
    return config["data"][stage]


def source_names(config: dict, stage: str) -> list[str]:
    return [s["name"] for s in sources(config, stage)]


def source(config: dict, stage: str, name: str) -> dict:
    """A training source by name; the safety loop's contrast source (loop.safety.remedies) is cleaned
    like the others (same filters, decontaminated against every evaluation and guard set) but mixed
    only into a contrast round."""
    contrast = contrast_source(config) if stage == "safety" else None
    for entry in [*sources(config, stage), *([contrast] if contrast else [])]:
        if entry["name"] == name:
            return entry
    raise KeyError(f"config data.{stage}: no source named '{name}' (have: {', '.join(source_names(config, stage))})")


def repeated(names: list[str]) -> list[str]:
    """The names that occur more than once (sorted): config names must be unique."""
    return sorted({n for n in names if names.count(n) > 1})


def check_unique_sources(config: dict) -> None:
    for stage in STAGES:
        contrast = contrast_source(config) if stage == "safety" else None
        dupes = repeated(source_names(config, stage) + ([contrast["name"]] if contrast else []))
        if dupes:
            raise ValueError(f"config data.{stage}: source names must be unique, repeated: {', '.join(dupes)}")


def clean_config(config: dict, stage: str, name: str) -> dict:
    """The global `clean` block with this source's own overrides merged over it."""
    return deep_merge(config.get("clean", {}), source(config, stage, name).get("clean") or {})


def english_rules(clean_cfg: dict) -> str:
    return clean_cfg.get("english_context", {}).get("rules") or package_data("data/english_context.yaml")


def eval_sets(config: dict) -> list[dict]:
    """Every evaluation set ({path, format}), the guard sets too (marked `guard`, with what their loader
    needs); training data is decontaminated against all of them."""
    ev = config["eval"]
    sets = [ev["knowledge"], ev["safety"]["mcq"], *ev["safety"]["risky"]]
    return [{"path": s["path"], "format": s.get("format")} for s in sets] + [
        {"name": g["name"], "path": g["path"], "format": g["format"], "encoding": g.get("encoding"),
         "include_flagged": g.get("include_flagged", False), "guard": True} for g in ev.get("guard") or []]


def references(config: dict) -> dict[str, dict]:
    """The `compare:` reference models by name, checked not to collide with the pipeline's model names."""
    names = [c["name"] for c in config.get("compare") or []]
    clash = sorted({n for n in names if n == "base" or MODEL_RE.match(n)}) + repeated(names)
    if clash:
        raise ValueError(f"config compare: names must be unique and differ from base, kg_rN, safe_rN: "
                         f"{', '.join(clash)}")
    refs = {c["name"]: c for c in config.get("compare") or []}
    return refs


def model_path(config: dict, model: str) -> str | None:
    """Directory of a model: `base` is the configured base model (or the built tiny demo model); a
    reference model of `compare:` has its own path (None: it lives behind an endpoint)."""
    refs = references(config)
    if model in refs:
        return refs[model].get("path") if refs[model]["backend"] == "local" else None
    if model == "base":
        return "results/models/tiny" if config["base_model"] == "tiny" else config["base_model"]
    return f"results/models/{model}"


def stage_of(model: str) -> str:
    match = MODEL_RE.match(model)
    if not match:
        raise ValueError(f"not a trained model name: {model!r} (expected kg_rN or safe_rN)")
    return STAGE_OF_PREFIX[match.group(1)]


def round_of(model: str) -> int:
    return int(MODEL_RE.match(model).group(2))


def previous_model(model: str, safety_start: Callable[[], str]) -> str:
    """The model a round starts from: round r+1 from round r; knowledge round 1 from `base`, safety
    round 1 from the model the knowledge loop selected (a callable: resolving it needs the loop)."""
    stage, rnd = stage_of(model), round_of(model)
    if rnd > 1:
        return f"{PREFIX[stage]}_r{rnd - 1}"
    return "base" if stage == "knowledge" else safety_start()


def judge(config: dict, name: str | None) -> dict | None:
    if name is None:
        return None
    if name not in config["judges"]:
        raise KeyError(f"config: judge '{name}' is not defined under judges: (have: {', '.join(config['judges'])})")
    return config["judges"][name]


def train_resources(config: dict) -> dict[str, Any]:
    """SLURM resources of a training job: one task (one torchrun) per node; mpi='srun' tells the
    executor not to wrap the job in its own srun, since the launcher calls srun itself. One node needs
    no srun of ours, and the SLURM plugin refuses mpi with a single task, so it gets plain nodes=1."""
    nodes = config["train"]["nodes"]
    return {"nodes": nodes, "tasks": nodes, "mpi": "srun"} if nodes > 1 else {"nodes": 1}


# A directory is taken for a Hugging Face model when it has its config and at least one tokenizer file
# (fast tokenizer, sentencepiece model, or a BPE/WordPiece vocabulary).
HF_MODEL_FILES = ("config.json",)
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt")


def model_dir_problem(path: Path) -> str | None:
    """Why `path` is not a usable Hugging Face model directory, or None when it is."""
    if not path.is_dir():
        return "no such directory" if not path.exists() else "not a directory"
    missing = [name for name in HF_MODEL_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in HF_TOKENIZER_FILES):
        missing.append(f"a tokenizer file (one of {', '.join(HF_TOKENIZER_FILES)})")
    return f"not a Hugging Face model directory: missing {', '.join(missing)}" if missing else None


def configured_paths(config: dict) -> list[tuple[str, str, str]]:
    """Every path the (validated) config names, as (config key, path, kind): kind 'file', 'path' (a file
    or a folder), 'source' (a file, a folder or a glob matching a file) or 'model'."""
    paths = []
    if config["base_model"] == "tiny":
        paths.append(("tiny.corpus", config["tiny"]["corpus"], "file"))
    else:
        paths.append(("base_model", config["base_model"], "model"))
    global_rules = config.get("clean", {}).get("english_context", {}).get("rules")
    if global_rules:
        paths.append(("clean.english_context.rules", global_rules, "file"))
    for stage in STAGES:
        for i, src in enumerate(sources(config, stage)):
            key = f"data.{stage}[{i}]"
            paths.append((f"{key}.path", src["path"], "source"))
            if src.get("decisions"):
                paths.append((f"{key}.decisions", src["decisions"], "file"))
            own_rules = ((src.get("clean") or {}).get("english_context") or {}).get("rules")
            if own_rules:
                paths.append((f"{key}.clean.english_context.rules", own_rules, "file"))
    paths += [(f"loop.safety.remedies[{i}].path", e["path"], "file")
              for i, e in enumerate(config["loop"]["safety"].get("remedies") or []) if e.get("path")]
    ev = config["eval"]
    paths.append(("eval.knowledge.path", ev["knowledge"]["path"], "file"))
    paths.append(("eval.safety.mcq.path", ev["safety"]["mcq"]["path"], "file"))
    if ev["safety"]["mcq"].get("answer_key"):
        paths.append(("eval.safety.mcq.answer_key", ev["safety"]["mcq"]["answer_key"], "file"))
    paths += [(f"eval.safety.risky[{i}].path", s["path"], "file") for i, s in enumerate(ev["safety"]["risky"])]
    for name, judge_cfg in config["judges"].items():
        if judge_cfg.get("keywords"):
            paths.append((f"judges.{name}.keywords", judge_cfg["keywords"], "file"))
        if judge_cfg["backend"] == "hf" and judge_cfg.get("path"):
            paths.append((f"judges.{name}.path", judge_cfg["path"], "model"))
    # CMMLU and MMLU-Redux sets are folders, XSTest a file: the loader checks the layout
    paths += [(f"eval.guard[{i}].path", g["path"], "path") for i, g in enumerate(ev.get("guard") or [])]
    paths += [(f"compare[{i}].path", c["path"], "model") for i, c in enumerate(config.get("compare") or [])
              if c["backend"] == "local"]
    if config["train"].get("deepspeed"):
        paths.append(("train.deepspeed", config["train"]["deepspeed"], "file"))
    return paths


def check_paths(config: dict, workdir: str | os.PathLike) -> None:
    """Stop before any job is planned when a configured path does not exist (or a model directory is
    not one): Snakemake would otherwise keep old results whose outputs exist. The error names every
    such config key, its path and the working directory relative paths were resolved against."""
    workdir = Path(workdir)
    problems = []
    for key, value, kind in configured_paths(config):
        path = workdir / value   # an absolute value stays absolute
        if kind == "model":
            problem = model_dir_problem(path)
        elif kind == "path":
            problem = None if path.exists() else "no such file or folder"
        elif kind == "source" and glob.has_magic(str(value)):
            problem = None if any(Path(p).is_file() for p in glob.iglob(str(path), recursive=True)) \
                else "no file matches this glob"
        elif kind == "source":
            problem = None if path.exists() else "no such file or folder"
        else:
            problem = None if path.is_file() else ("not a file" if path.exists() else "no such file")
        if problem:
            problems.append(f"  {key}: {value}: {problem}")
    if problems:
        raise FileNotFoundError(f"config paths (relative ones resolved against {workdir}):\n" + "\n".join(problems))


def endpoint_for(config: dict, model: str) -> dict | None:
    """The OpenAI-compatible endpoint a model's answers come from, or None (generated in-process)."""
    from culturalign.evaluate.endpoint import endpoint_config  # the LLM client stack, only when asked

    ref = references(config).get(model)
    if ref is not None:
        return endpoint_config(ref) if ref["backend"] == "openai" else None
    generation = config["generation"]
    return endpoint_config(generation, model) if generation.get("backend") == "openai" else None


def mcq_method(config: dict, model: str) -> str:
    """How a model answers the safety MCQ: eval.safety.mcq.method, except that a model behind an endpoint
    (no weights to read log-likelihoods from) generates."""
    method = config["eval"]["safety"]["mcq"].get("method", "generate")
    return "generate" if method == "loglik" and endpoint_for(config, model) is not None else method


def check_guard(config: dict) -> None:
    """loop.guard may only name what is measured: eval.guard sets with an accuracy (not xstest) or
    `knowledge` in max_drop, and over_refusal_max only with an xstest set; guard set names are unique."""
    sets = config["eval"].get("guard") or []
    dupes = repeated([g["name"] for g in sets])
    if dupes:
        raise ValueError(f"config eval.guard: set names must be unique, repeated: {', '.join(dupes)}")
    guard = config["loop"].get("guard") or {}
    measurable = {g["name"] for g in sets if g["format"] != "xstest"} | {"knowledge"}
    unknown = sorted(set(guard.get("max_drop") or {}) - measurable)
    if unknown:
        raise ValueError(f"config loop.guard.max_drop: {', '.join(unknown)} is not measured (measured: "
                         f"{', '.join(sorted(measurable))}: the eval.guard multiple-choice sets and knowledge)")
    if guard.get("over_refusal_max") is not None and not any(g["format"] == "xstest" for g in sets):
        raise ValueError("config loop.guard.over_refusal_max needs an eval.guard set of format xstest")


def loop_guard(config: dict) -> dict | None:
    """The config's loop.guard when it guards anything (a max_drop or an over-refusal ceiling), else None."""
    guard = config["loop"].get("guard") or {}
    return guard if guard.get("max_drop") or guard.get("over_refusal_max") is not None else None


# ----------------------------------------------------------------- remedies of the safety loop

# Settings a remedy entry gets when the config leaves them out (culturalign.loop.remedies says what each does).
REMEDY_DEFAULTS = {"replay": {"share": 0.25, "seed": 0}, "contrast": {"format": None, "clean": {}},
                   "dpo": {"beta": 0.1}, "orpo": {"beta": 0.1}}
CONTRAST = "contrast"   # the contrast source's name: results/data/safety/contrast/clean.parquet


def remedies(config: dict) -> list[dict]:
    """loop.safety.remedies with each entry's defaults filled in (an empty list: no remedies)."""
    return [{**REMEDY_DEFAULTS[e["name"]], **e} for e in config["loop"]["safety"].get("remedies") or []]


def contrast_source(config: dict) -> dict | None:
    """The contrast remedy's source as a data source entry, or None when no contrast entry is listed."""
    entries = [e for e in remedies(config) if e["name"] == "contrast"]
    if not entries:
        return None
    return {"name": CONTRAST, "path": entries[0]["path"], "format": entries[0]["format"],
            "clean": entries[0]["clean"], "cap": None, "decisions": None}


def check_remedies(config: dict) -> None:
    """Remedies belong to the safety loop; a contrast entry names its source, and every contrast entry the
    same one (the preference rounds take their benign prompts from it)."""
    if config["loop"]["knowledge"].get("remedies"):
        raise ValueError("config loop.knowledge.remedies: remedies apply to the safety loop only (loop.safety.remedies)")
    for i, e in enumerate(config["loop"]["safety"].get("remedies") or []):
        if (e["name"] == "contrast") != bool(e.get("path")):
            raise ValueError(f"config loop.safety.remedies[{i}]: 'path' (the benign contrast source) is "
                             f"{'required' if e['name'] == 'contrast' else 'only for contrast'}, entry {e}")
    paths = {(e["path"], e.get("format")) for e in remedies(config) if e["name"] == "contrast"}
    if len(paths) > 1:
        raise ValueError(f"config loop.safety.remedies: every contrast entry must name the same source, got {sorted(paths)}")
