"""Small generic helpers the library shares (no knowledge of the workflow's folders or config)."""
from __future__ import annotations

import copy
from importlib import resources


def package_data(name: str) -> str:
    """Path of an editable data file shipped inside the package (culturalign/data/<name>)."""
    return str(resources.files("culturalign") / "data" / name)


def deep_merge(base: dict, over: dict) -> dict:
    """`over` wins; nested dicts merge key by key (so a source can override one threshold)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
