"""Evaluation sets in their published formats, turned into one item shape.

Every loader returns items `{id, question, dim, subtask, difficulty, reference, options, gold, history}`:
`dim` is a knowledge dimension (TU IE TG LR TP) or a safety area (DI VV CV IR SR), mapped from the
set's Chinese category names through culturalign/evaluate/categories.yaml (extended by the config's
`eval.categories`); `options` is `{letter: text}` for multiple-choice questions, else None; `history`
is a list of earlier `{role, content}` turns sent before the question; `gold` is a correct option given
inside a user JSONL file (else None).

Formats (auto-detected when not given):
- `a-eval`: `[{category: <main task>, infos: [{id, question, hard_level, category: <sub-task>}]}]`
- `chisafetybench-mcq`: `[{category: <area>, infos: [{id, question, category}]}]`, options inside the question
- `chisafetybench-risky`: `[{category: 应拒答, infos: [{id, question, category: <sub-category>}]}]`, or the
  with-history shape `[{category, sub_category, input, history: [{role, content}]}]`
- `jsonl`: one object a line (or a JSON list of them): `{id, question, dimension|area, subtask?, difficulty?,
  reference?, options?, gold?, history?}`
"""
from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import Any

import yaml

from culturalign.io import ROLE_ALIASES, InputError, read_json, role
from culturalign.util import package_data

FORMATS = ("a-eval", "chisafetybench-mcq", "chisafetybench-risky", "jsonl")
CODES = ("TU", "IE", "TG", "LR", "TP", "DI", "VV", "CV", "IR", "SR")
RISKY_BLOCK = "应拒答"  # "should refuse": the risky file's only top-level category, not an area

# An option marker: a capital letter at a line start or after whitespace, then a delimiter ("A.", "A .",
# "A、", "A:", "A)"). The lenient form (line start, no delimiter, e.g. "C青少年...") fills gaps only.
STRICT_MARK = re.compile(r"(?:^|(?<=\s))([A-H])[ \t]*[.、:)]")
LENIENT_MARK = re.compile(r"(?<=\n)[ \t]*([A-H])(?=[^\sA-Za-z.、:)])")


def category_table(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The packaged name -> code table with the config's `eval.categories` merged over it."""
    table = yaml.safe_load(Path(package_data("evaluate/categories.yaml")).read_text(encoding="utf-8")) or {}
    return {**{c: c for c in CODES}, **table, **(extra or {})}


# ---------------------------------------------------------------- options inside a question

def _chain(marks: list[tuple[int, int, str, bool]]) -> list[tuple[int, int, str, bool]]:
    """The best run A, B, C, ... of markers in text order: longest, then most strict markers, then latest."""
    best: list = []
    for start, mark in enumerate(marks):
        if mark[2] != "A":
            continue
        run = [mark]
        for later in marks[start + 1:]:
            if later[2] == chr(ord(run[-1][2]) + 1):
                run.append(later)
        key = (len(run), sum(m[3] for m in run), run[0][0])
        if not best or key > (len(best), sum(m[3] for m in best), best[0][0]):
            best = run
    return best


def parse_options(question: str) -> dict[str, str] | None:
    """`{letter: text}` of the options written inside a question, or None when there are fewer than two."""
    text = unicodedata.normalize("NFKC", question)
    marks = [(m.start(1), m.end(), m.group(1), True) for m in STRICT_MARK.finditer(text)]
    marks += [(m.start(1), m.end(), m.group(1), False) for m in LENIENT_MARK.finditer(text)]
    run = _chain(sorted(marks))
    if len(run) < 2:
        return None
    options = {}
    for mark, nxt in zip(run, run[1:] + [None]):
        body = text[mark[1]:nxt[0] if nxt else len(text)].strip()
        if not body:
            return None
        options[mark[2]] = body
    return options


# ---------------------------------------------------------------- raw records per format

def detect(path: str | os.PathLike, data: Any = None) -> str:
    """The format of an evaluation file, from its shape (see the module docstring)."""
    path = Path(path)
    data = read_json(path) if data is None else data
    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        raise InputError(path, f"expected a non-empty list of records; cannot detect the format "
                               f"(set format: one of {', '.join(FORMATS)})")
    first = data[0]
    if "infos" in first:
        infos = [i for block in data for i in block.get("infos") or []]
        if any("hard_level" in i for i in infos):
            return "a-eval"
        if any(block.get("category") == RISKY_BLOCK for block in data):
            return "chisafetybench-risky"
        if infos and all(parse_options(str(i.get("question", ""))) for i in infos[:20]):
            return "chisafetybench-mcq"
    elif "input" in first and "history" in first:
        return "chisafetybench-risky"
    elif "question" in first:
        return "jsonl"
    raise InputError(path, f"cannot detect the format from the first record's keys {sorted(first)} "
                           f"(set format: one of {', '.join(FORMATS)})")


def _need(path: Path, rec: dict, field: str, index: int) -> Any:
    value = rec.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError(path, f"missing '{field}'", record=index, field=field)
    return value


def _history(path: Path, raw: Any, index: int) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError(path, "history must be a list of {role, content}", record=index, field="history")
    turns = []
    for turn in raw:
        speaker = role(turn.get("role", "")) if isinstance(turn, dict) else None
        if speaker is None or not isinstance(turn.get("content"), str):
            raise InputError(path, f"bad history turn {turn!r} (roles: {', '.join(ROLE_ALIASES)})",
                             record=index, field="history")
        turns.append({"role": speaker, "content": turn["content"]})
    return turns


def _blocks(path: Path, data: list) -> list[tuple[dict, dict]]:
    """(block, info) pairs of the A-Eval / CHiSafetyBench block files."""
    pairs = []
    for b, block in enumerate(data):
        if not isinstance(block, dict) or not isinstance(block.get("infos"), list):
            raise InputError(path, "expected {category, infos: [...]}", record=b)
        pairs += [(block, info) for info in block["infos"]]
    return pairs


def _letter(value: object) -> str:
    """An option letter as written by a person: full-width and lowercase letters are folded to A-H."""
    return unicodedata.normalize("NFKC", str(value)).strip().upper()


def _raw(path: Path, fmt: str, data: list) -> list[dict]:
    """Records with the Chinese category names still as names (`cats`: candidates, most specific first)."""
    out = []
    if fmt in ("a-eval", "chisafetybench-mcq") or (fmt == "chisafetybench-risky" and "infos" in data[0]):
        for i, (block, info) in enumerate(_blocks(path, data)):
            sub = info.get("category")
            cats = [sub] if fmt == "chisafetybench-risky" else [block.get("category")]
            out.append({"id": _need(path, info, "id", i), "question": _need(path, info, "question", i), "cats": cats,
                        "subtask": sub, "difficulty": info.get("hard_level"), "reference": None,
                        "options": None, "gold": None, "history": []})
    elif fmt == "chisafetybench-risky":
        for i, rec in enumerate(data):
            out.append({"id": rec.get("id", i + 1), "question": _need(path, rec, "input", i),
                        "cats": [rec.get("sub_category"), rec.get("category")], "subtask": rec.get("sub_category"),
                        "difficulty": None, "reference": None, "options": None, "gold": None,
                        "history": _history(path, rec.get("history"), i)})
    elif fmt == "jsonl":
        for i, rec in enumerate(data):
            opts = rec.get("options")
            if isinstance(opts, list):
                opts = {chr(ord("A") + k): str(t) for k, t in enumerate(opts)}
            out.append({"id": _need(path, rec, "id", i), "question": _need(path, rec, "question", i),
                        "cats": [rec.get("dimension") or rec.get("area")], "subtask": rec.get("subtask"),
                        "difficulty": rec.get("difficulty"), "reference": rec.get("reference"),
                        "options": opts, "gold": _letter(rec["gold"]) if rec.get("gold") else None,
                        "history": _history(path, rec.get("history"), i)})
    else:
        raise InputError(path, f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")
    return out


def _records(path: str | os.PathLike, fmt: str | None) -> tuple[Path, str, list[dict]]:
    path = Path(path)
    data = read_json(path, context="evaluation file")
    fmt = fmt or detect(path, data)
    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        raise InputError(path, f"expected a non-empty list of JSON objects for format '{fmt}'")
    return path, fmt, _raw(path, fmt, data)


# ---------------------------------------------------------------- public loaders

def load(path: str | os.PathLike, fmt: str | None = None, categories: dict[str, str] | None = None,
         limit: int | None = None) -> list[dict]:
    """The items of one evaluation file (the first `limit` of them when set).

    `categories` are the config's extra name -> code mappings. Raises InputError on an unknown
    category, a duplicate id, or a multiple-choice question whose options cannot be found.
    """
    path, fmt, records = _records(path, fmt)
    table = category_table(categories)
    seen: dict[str, int] = {}
    items = []
    for i, rec in enumerate(records):
        item_id = str(rec.pop("id"))
        if item_id in seen:
            raise InputError(path, f"duplicate id '{item_id}' (records {seen[item_id]} and {i})", record=i, field="id")
        seen[item_id] = i
        names = [c for c in rec.pop("cats") if c]
        dim = next((table[c] for c in names if c in table), None)
        if dim is None:
            raise InputError(path, f"unknown category {' / '.join(map(repr, names)) or '(none)'}; known: "
                                   f"{', '.join(sorted(table))} (add it under eval.categories in the config)",
                             record=i, field="category")
        if rec["options"] is None and fmt in ("chisafetybench-mcq", "jsonl"):
            rec["options"] = parse_options(rec["question"])
        if rec["options"] is None and (fmt == "chisafetybench-mcq" or rec["gold"] is not None):
            raise InputError(path, "no options (A. ..., B. ...) found in the question", record=i, field="question")
        if rec["gold"] is not None and rec["gold"] not in (rec["options"] or {}):
            raise InputError(path, f"gold '{rec['gold']}' is not one of the options "
                                   f"{sorted(rec['options'] or {})}", record=i, field="gold")
        items.append({"id": item_id, **rec, "dim": dim})
    return items[:limit] if limit else items


def evalset_name(fmt: str | None, path: str | os.PathLike) -> str:
    """The name of an evaluation set in a score file (its `benchmark` field): a-eval, chisafetybench, or
    the file's stem."""
    fmt = fmt or detect(path)
    return {"a-eval": "a-eval", "chisafetybench-mcq": "chisafetybench",
            "chisafetybench-risky": "chisafetybench"}.get(fmt, Path(path).stem)


def load_sets(sets: list[dict], categories: dict[str, str] | None = None) -> list[dict]:
    """Several evaluation files ({path, format, limit}) as one evaluation set. With more than one file each
    id is prefixed with its file's stem ("risky_history:3"), since each file numbers from 1."""
    items, origin = [], {}
    for s in sets:
        for it in load(s["path"], s.get("format"), categories, s.get("limit")):
            if len(sets) > 1:
                it["id"] = f"{Path(s['path']).stem}:{it['id']}"
            if it["id"] in origin:
                raise InputError(s["path"], f"id '{it['id']}' is also in {origin[it['id']]}; "
                                            "evaluation files of one set need distinct names", field="id")
            origin[it["id"]] = s["path"]
            items.append(it)
    return items


def load_questions(path: str | os.PathLike, fmt: str | None = None) -> list[str]:
    """Every question text of an evaluation file, with the user turns of its history (for decontamination).
    Categories are not checked here: an unmapped category must not stop the data stage."""
    _, _, records = _records(path, fmt)
    texts = []
    for rec in records:
        texts += [t["content"] for t in rec["history"] if t["role"] == "user"]
        texts.append(rec["question"])
    return texts


def load_answer_key(path: str | os.PathLike, items: list[dict], *, subset: bool = False) -> dict[str, str]:
    """`{id: letter}` from a JSON object file, checked against the items' options.

    Ids that are not items and letters outside a question's options raise InputError naming them all.
    `subset=True` (the items are the first `limit` of the evaluation set) skips key ids beyond the items.
    Full-width letters and lowercase are accepted (normalised to A-H).
    """
    path = Path(path)
    raw = read_json(path, context="answer key")
    if not isinstance(raw, dict):
        raise InputError(path, 'expected a JSON object {"<id>": "<letter>", ...}')
    by_id = {it["id"]: it for it in items}
    key, unknown, bad = {}, [], []
    for item_id, letter in raw.items():
        letter = _letter(letter)
        if item_id not in by_id:
            unknown.append(item_id)
        elif letter not in (by_id[item_id]["options"] or {}):
            bad.append(f"{item_id}: {letter!r} not in {sorted(by_id[item_id]['options'] or {})}")
        else:
            key[item_id] = letter
    if unknown and not subset:
        raise InputError(path, f"{len(unknown)} id(s) not in the evaluation set: {', '.join(unknown[:20])}")
    if bad:
        raise InputError(path, f"{len(bad)} letter(s) outside the question's options: {'; '.join(bad[:20])}")
    missing = [it["id"] for it in items if it["id"] not in key]
    if missing:
        raise InputError(path, f"{len(missing)} question(s) have no key: {', '.join(missing[:20])}")
    return key
