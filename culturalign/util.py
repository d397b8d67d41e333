"""Small generic helpers the library shares (no knowledge of the workflow's folders or config)."""
from __future__ import annotations

import copy
import logging
import sys
from importlib import resources


def package_data(name: str) -> str:
    """Path of an editable data file shipped inside the package, e.g. "evaluate/refusal_keywords.yaml"."""
    return str(resources.files("culturalign") / name)


def deep_merge(base: dict, over: dict) -> dict:
    """`over` wins; nested dicts merge key by key (so a source can override one threshold)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def log_to(path: str, *, stderr: bool = False) -> None:
    """The logging set-up of every rule script: INFO and above into the rule's log file. `stderr=True`
    also sends the process's stderr there (library warnings, e.g. tokenizers', that bypass logging)."""
    logging.basicConfig(filename=path, level=logging.INFO, format="%(asctime)s %(name)s %(message)s", force=True)
    if stderr:
        sys.stderr = open(path, "a", encoding="utf-8")
