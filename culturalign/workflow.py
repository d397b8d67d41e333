"""Pure helpers the rules use to turn the config into paths and parameters.

Kept out of the .smk files so they are plain, importable and unit-tested: which sources a stage has,
the effective cleaning config of one source, where a model lives, which model a round starts from.
"""
from __future__ import annotations

import copy
import re
from importlib import resources
from typing import Any, Callable

STAGES = ("knowledge", "safety")
PREFIX = {"knowledge": "kg", "safety": "safe"}
STAGE_OF_PREFIX = {v: k for k, v in PREFIX.items()}
MODEL_RE = re.compile(r"^(kg|safe)_r(\d+)$")


def package_data(name: str) -> str:
    """Path of an editable data file shipped inside the package (culturalign/data/<name>)."""
    return str(resources.files("culturalign") / "data" / name)


def deep_merge(base: dict, over: dict) -> dict:
    """`over` wins; nested dicts merge key by key (so a source can override one threshold)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def sources(config: dict, stage: str) -> list[dict]:
    return config["data"][stage]


def source_names(config: dict, stage: str) -> list[str]:
    return [s["name"] for s in sources(config, stage)]


def source(config: dict, stage: str, name: str) -> dict:
    for entry in sources(config, stage):
        if entry["name"] == name:
            return entry
    raise KeyError(f"config data.{stage}: no source named '{name}' (have: {', '.join(source_names(config, stage))})")


def check_unique_sources(config: dict) -> None:
    for stage in STAGES:
        names = source_names(config, stage)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"config data.{stage}: source names must be unique, repeated: {', '.join(dupes)}")


def clean_config(config: dict, stage: str, name: str) -> dict:
    """The global `clean` block with this source's own overrides merged over it."""
    return deep_merge(config.get("clean", {}), source(config, stage, name).get("clean") or {})


def english_rules(clean_cfg: dict) -> str:
    return clean_cfg.get("english_context", {}).get("rules") or package_data("english_context.yaml")


def eval_sets(config: dict) -> list[dict]:
    """Every evaluation set ({path, format}); training data is decontaminated against all of them."""
    ev = config["eval"]
    sets = [ev["knowledge"], ev["safety"]["mcq"], *ev["safety"]["risky"]]
    return [{"path": s["path"], "format": s.get("format")} for s in sets]


def model_path(config: dict, model: str) -> str:
    """Directory of a model: `base` is the configured base model (or the built tiny demo model)."""
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
