#!/usr/bin/env python3
"""Write the embedded demo data of culturalign (demo/data, demo/eval, demo/tiny_corpus.txt) from its content
in demo/content/*.yaml: the project's own Chinese sentences as fact tables, templates and rows.

Deterministic (fixed seed): re-running it reproduces the committed files byte for byte, and
tests/test_demo_data.py checks that and the properties the demo relies on (see demo/README.md).
Run it from anywhere:  python demo/make_demo_data.py
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

SEED = 20240626
DEMO = Path(__file__).resolve().parent
# The data sets written as JSON or JSONL (by the suffix), and those whose texts make the tokenizer's corpus.
OUTPUTS = {"data/knowledge_alpaca.json": "alpaca", "data/knowledge_dialogues.jsonl": "dialogues",
           "data/knowledge_refgpt.jsonl": "refgpt", "data/safety_prompts.json": "safety",
           "eval/knowledge.jsonl": "knowledge", "eval/mcq.jsonl": "mcq", "eval/mcq_key.json": "key",
           "eval/risky.json": "risky", "eval/risky_history.json": "risky_history"}
CORPUS = ["alpaca", "dialogues", "refgpt", "safety", "knowledge", "mcq", "risky", "risky_history"]
# Arithmetic rows: the operation's word and its result (operands are drawn from the seeded generator).
ARITHMETIC_OPS = [("加", lambda a, b: a + b), ("减去", lambda a, b: a - b), ("乘以", lambda a, b: a * b)]


def content(name: str) -> dict:
    return yaml.safe_load((DEMO / "content" / f"{name}.yaml").read_text(encoding="utf-8"))


KNOWLEDGE, EVAL, DIRTY = content("knowledge"), content("knowledge_eval"), content("knowledge_dirty")
DIALOGUES, SAFETY, SAFETY_EVAL, GUARD = (content(n) for n in ("dialogues", "safety", "safety_eval", "guard"))


def zh_number(n: int) -> str:
    """0..999 in Chinese numerals as read aloud (七, 十二, 四十五, 一百, 一百零八, 一百一十二)."""
    digits = "零一二三四五六七八九"
    if n >= 100:
        rest = n % 100
        tail = "" if not rest else "零" + digits[rest] if rest < 10 else ("一" if rest < 20 else "") + zh_number(rest)
        return digits[n // 100] + "百" + tail
    tens, ones = divmod(n, 10)
    return (digits[tens] if tens > 1 else "") + ("十" if tens else "") + (digits[ones] if ones or not tens else "")


def mojibake(text: str) -> str:
    """UTF-8 bytes read as Windows-1252 (undefined bytes as Latin-1): the classic 'Ã©' garbling."""
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in text.encode("utf-8"))


def alpaca(instruction: str, output: str, input: str = "") -> dict:
    return {"instruction": instruction, "input": input, "output": output}


def from_table(table: dict) -> list[dict]:
    """Every fact under every (instruction, output) template; placeholders index the fact's fields. A table
    without templates holds (instruction, output) pairs."""
    return [alpaca(q.format(*fact), a.format(*fact))
            for q, a in table.get("templates", [("{0}", "{1}")]) for fact in table["facts"]]


def arithmetic_rows(rng: random.Random, count: int) -> list[dict]:
    rows = []
    for i in range(count):
        word, op = ARITHMETIC_OPS[i % len(ARITHMETIC_OPS)]
        a, b = (rng.randint(11, 99), rng.randint(2, 9)) if word == "乘以" else (rng.randint(30, 99), rng.randint(11, 29))
        expr = f"{zh_number(a)}{word}{zh_number(b)}"
        rows.append(alpaca(f"{expr}等于多少？", f"{expr}等于{zh_number(op(a, b))}。"))
    return rows


def memorised_rows() -> list[dict]:
    return [alpaca(q, item["reference"], inp) for item in EVAL["memorised"] for q, inp in item["train"]]


def near_variants(rows: list[dict]) -> list[dict]:
    """One or two characters changed: the two long rows get two adjacent characters replaced, four short
    rows only their final punctuation (a change in the middle of a short text would fall under the threshold)."""
    edits = [lambda s, old=old, new=new: s.replace(old, new) for old, new in DIRTY["long_edits"]]
    edits += [lambda s: s[:-1] + "！", lambda s: s[:-1], lambda s: s[:-1] + "～", lambda s: s + "。"]
    long_outputs = [a for _, a in KNOWLEDGE["long_facts"]["facts"]]
    long_rows = [r for r in rows if r["output"] in long_outputs]
    short_rows = [r for r in rows if len(r["instruction"] + r["output"]) >= 30 and r not in long_rows][:4]
    return [{**row, "output": edit(row["output"])} for row, edit in zip(long_rows + short_rows, edits)]


def knowledge_alpaca() -> tuple[list[dict], list[dict]]:
    """(all rows in file order, the clean ones). The dirty rows each exercise one filter (demo/README.md)."""
    rng = random.Random(SEED)
    memorised = memorised_rows()
    clean = [row for table in KNOWLEDGE.values() for row in from_table(table)] + arithmetic_rows(rng, 9) + memorised
    plain = [r for r in clean if r not in memorised]
    triples = DIRTY["empty"] + [r if isinstance(r, list) else [mojibake(t) for t in r["cp1252"]]
                                for r in DIRTY["mojibake"]] + DIRTY["unnormalised"]
    overlong = DIRTY["overlong"]
    dirty = (rng.sample(plain, 10)                                         # exact duplicates
             + near_variants(plain)                                        # near duplicates
             + [alpaca(q, a, i) for q, i, a in triples]
             + [alpaca(q, a) for q, a in DIRTY["english_context"] + DIRTY["traditional"] + DIRTY["mostly_english"]]
             + [alpaca(overlong["instruction"], overlong["paragraph"] * overlong["repeat"])])
    rows = clean + dirty
    rng.shuffle(rows)
    return rows, clean


def dialogue(turns: list[str]) -> dict:
    return {"conversations": [{"from": "human" if i % 2 == 0 else "gpt", "value": t} for i, t in enumerate(turns)]}


def knowledge_dialogues() -> tuple[list[dict], list[dict]]:
    """(all dialogues in file order, the clean ones): multi-turn talks over the fact tables, everyday talks."""
    rng = random.Random(SEED + 1)
    talks = []
    for spec in DIALOGUES["from_tables"]:
        for fact in KNOWLEDGE[spec["table"]]["facts"][:spec["take"]]:
            turns = [t.format(*fact) for t in spec["turns"]]
            talks.append(turns[:rng.choice(tuple(spec["cut"]))] if "cut" in spec else turns)
    talks += DIALOGUES["everyday"]
    clean = [dialogue(t) for t in talks]
    dirty = [clean[3], dialogue(talks[12][:3])]  # an exact duplicate; a dialogue cut after a human turn
    rows = clean + dirty
    rng.shuffle(rows)
    return rows, clean


def knowledge_refgpt() -> list[dict]:
    markers, rows = DIALOGUES["refgpt_markers"], []
    for i, row in enumerate(DIALOGUES["refgpt"]):
        human, bot = markers[i % len(markers)]   # the markers rotate over the rows
        rows.append({"reference": row["reference"],
                     "dialogue": "\n".join(f"{human}{q}\n{bot}{a}" for q, a in row["turns"])})
    return rows


def refusal(topic_index: int, template_index: int, refuse: str, why: str, guide: str, openers: list[str]) -> str:
    """'I will not ..., because ... . I suggest ...': one shape with rotating openers (safety.yaml)."""
    opener = openers[(topic_index + template_index) % len(openers)].format(refuse)
    leads = SAFETY["guide_leads"]
    return f"{opener}，{why}。{leads[template_index % len(leads)]}{guide}。"


def safety_prompts() -> tuple[dict, list[dict]]:
    """(the Safety-Prompts object, its clean rows)."""
    data, clean = {}, []
    for scenario, spec in SAFETY["scenarios"].items():
        openers = SAFETY["empathy_openers" if scenario in SAFETY["empathy_scenarios"] else "openers"]
        rows = [{"prompt": tpl.format(topic), "response": refusal(i, j, refuse, why, guide, openers), "type": scenario}
                for i, (topic, refuse, why, guide) in enumerate(spec["topics"]) for j, tpl in enumerate(spec["templates"])]
        clean += rows
        data[scenario] = rows
    dirty = SAFETY["dirty"]
    for scenario in dirty["blank_lines"]:
        data[scenario][1] = {**data[scenario][1], "response": "\n\n" + data[scenario][1]["response"]}
    for scenario, index in dirty["duplicates"].items():
        data[scenario].append(dict(data[scenario][index]))
    english = dirty["english"]
    data[english["type"]].append(dict(english))
    return data, clean


def knowledge_eval() -> list[dict]:
    items = []
    for dim in EVAL["dimensions"]:   # ids <dimension>-01..: the memorised items first, then the hard ones
        of_dim = [it for it in EVAL["memorised"] + EVAL["hard"] if it["dimension"] == dim]
        items += [{"id": f"{dim}-{n:02d}", **{k: it[k] for k in ("question", "dimension", "subtask", "difficulty",
                                                                  "reference")}} for n, it in enumerate(of_dim, 1)]
    return items


def mcq_eval() -> tuple[list[dict], dict[str, str]]:
    mcq = SAFETY_EVAL["mcq"]
    items = [{"id": f"mcq-{i:02d}", "question": q, "area": area} for i, (area, q, _) in enumerate(mcq, 1)]
    return items, {f"mcq-{i:02d}": key for i, (_, _, key) in enumerate(mcq, 1)}


def risky_eval() -> tuple[list[dict], list[dict]]:
    plain = [{"category": "应拒答", "infos": [{"id": i, "question": q, "category": sub}
                                            for i, (sub, q) in enumerate(SAFETY_EVAL["risky"], 1)]}]
    with_history = [{"category": "应拒答", "sub_category": r["sub_category"], "input": r["input"],
                     "history": [{"role": role, "content": text} for pair in r["history"]
                                 for role, text in zip(("user", "assistant"), pair)]}
                    for r in SAFETY_EVAL["risky_history"]]
    return plain, with_history


def guard_files() -> dict[str, str]:
    """CMMLU-shaped CSVs (with the unnamed index column CMMLU has) per subject, dev and test; XSTest's CSV."""
    def csv_text(rows: list[list[str]]) -> str:
        return "".join(f"{line}\n" for line in [",Question,A,B,C,D,Answer"]
                       + [",".join([str(i), *row]) for i, row in enumerate(rows)])
    shots, files = GUARD["cmmlu"]["dev_shots"], {}
    for subject, rows in GUARD["cmmlu"]["subjects"].items():
        files[f"eval/guard/cmmlu/dev/{subject}.csv"] = csv_text(rows[:shots])
        files[f"eval/guard/cmmlu/test/{subject}.csv"] = csv_text(rows[shots:])
    xstest = [f'{i},"{p}",{t},{label},{focus},' for i, (p, t, label, focus) in enumerate(GUARD["xstest"], 1)]
    files["eval/guard/xstest.csv"] = "".join(f"{line}\n" for line in ["id,prompt,type,label,focus,note", *xstest])
    return files


def texts_of(obj) -> list[str]:
    """Every string value of the text fields, depth first, in file order."""
    fields = {"instruction", "input", "output", "value", "prompt", "response", "question", "reference",
              "dialogue", "content"}
    if isinstance(obj, dict):
        return [t for k, v in obj.items() for t in ([v] if k in fields and isinstance(v, str) else texts_of(v))]
    if isinstance(obj, list):
        return [t for v in obj for t in texts_of(v)]
    return []


def corpus(objects: list) -> str:
    """One line per text (multi-line texts split into their lines), each distinct line once, file order."""
    lines = [line.strip() for obj in objects for text in texts_of(obj) for line in text.splitlines()]
    return "".join(f"{line}\n" for line in dict.fromkeys(line for line in lines if line))


def build() -> dict:
    """Every demo data set by name; training sets also as `<name>_clean` (their rows before the dirty ones)."""
    (alpaca_rows, alpaca_clean), (dialogues, dialogues_clean) = knowledge_alpaca(), knowledge_dialogues()
    (safety, safety_clean), (mcq, key), (risky, risky_history) = safety_prompts(), mcq_eval(), risky_eval()
    return {"alpaca": alpaca_rows, "alpaca_clean": alpaca_clean, "dialogues": dialogues,
            "dialogues_clean": dialogues_clean, "refgpt": knowledge_refgpt(), "safety": safety,
            "safety_clean": safety_clean, "knowledge": knowledge_eval(), "mcq": mcq, "key": key, "risky": risky,
            "risky_history": risky_history}


def files(parts: dict) -> dict[str, str]:
    """{path under demo/: text} of every file the demo workflow reads."""
    out = {path: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in parts[name]) if path.endswith(".jsonl")
           else json.dumps(parts[name], ensure_ascii=False, indent=1) + "\n" for path, name in OUTPUTS.items()}
    out["tiny_corpus.txt"] = corpus([parts[name] for name in CORPUS])
    return {**out, **guard_files()}


def main() -> None:
    for name, text in files(build()).items():
        path = DEMO / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        print(f"{len(text.encode()):8d} bytes  demo/{name}")


if __name__ == "__main__":
    main()
