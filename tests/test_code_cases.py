"""The `translated_code` filter on tests/data/code_cases.jsonl: project-written snippets (no real translated-code
rows exist in the labelled demo set) in 14 languages, translated as a machine translator does it (keywords,
types, names, tags, CSS, SQL clauses, full-width punctuation, one line translated) and intact ones (Chinese
comments, strings, prose, pseudo-code, formulas). A third is held out: the rules were not tuned on it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturalign.data.code import translated_code_in

CASES = [json.loads(line) for line in (Path(__file__).parent / "data" / "code_cases.jsonl").read_text(
    encoding="utf-8").splitlines()]


def _scores(split: str) -> tuple[float, float]:
    rows = [r for r in CASES if r["split"] == split]
    found = translated_code_in([r["text"] for r in rows])
    hits = sum(r["translated"] and f for r, f in zip(rows, found))
    return hits / sum(found), hits / sum(r["translated"] for r in rows)


def test_case_file_covers_every_language():
    langs = {r["lang"] for r in CASES}
    assert {"python", "javascript", "java", "c", "cpp", "csharp", "go", "html", "css", "sql", "shell", "json",
            "regex", "latex", "prose"} <= langs
    assert len(CASES) >= 150 and sum(r["split"] == "heldout" for r in CASES) >= len(CASES) // 3


@pytest.mark.parametrize("split, min_precision, min_recall", [("dev", 0.95, 0.9), ("heldout", 0.95, 0.85)])
def test_precision_and_recall_on_the_cases(split, min_precision, min_recall):
    precision, recall = _scores(split)
    assert precision >= min_precision and recall >= min_recall, (split, precision, recall)


@pytest.mark.parametrize("text", [
    "SELECT name\nFROM 员工\nWHERE age > 30;",                              # a translated table name
    "for (int i = 0; i < n; i++) {\n    printf（\"%d\", i）；\n}",          # full-width syntax
    "<ul>\n  <li>一</li>\n</列表>",                                         # a translated closing tag
    ".box {\n  display: 弹性;\n}",                                           # a translated CSS value
    "try:\n    f()\n除了 KeyError:\n    pass",                                # one translated line
    "\\开始{itemize}\n\\item 一\n\\end{itemize}",                            # a translated LaTeX command
])
def test_translated(text):
    assert translated_code_in([text]) == [True]


@pytest.mark.parametrize("text", [
    "UPDATE users\nSET name = '张三'\nWHERE id = 1;",                        # English SET, a Chinese string
    "如果你有时间，请选择一本书，然后返回图书馆。",                             # 如果/选择/返回 in prose
    "其中：\nN = 银河系内可能存在的文明数量；\nR = 恒星的形成速度；",          # a formula's legend
    "print(\"你好\")  # 打印问候",                                            # Chinese string and comment
    "调用列表的 append() 方法，再用 len（）函数求长度。",                     # code named in prose
    "首先：\n  准备材料。\n最后：\n  把它们混合均匀。",                          # 最后： as a heading
    "设集合 A = {1, 2, 3}，\nB = {2, 3}，求 A 与 B 的交集。",                     # braces in maths
    "价值(value)是经济学的基本概念，价格围绕价值波动。",                        # a term glossed in brackets
    "联系方式：email：service；电话：400-800-1234；",                           # a contact line
])
def test_intact(text):
    assert translated_code_in([text]) == [False]
