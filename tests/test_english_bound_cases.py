"""The `english_context` rules on tests/data/english_bound_cases.jsonl: project-written prompts with their answers,
as a machine translator renders the English-bound task families of the Stanford Alpaca / self-instruct set
(parts of speech, lost grammar errors, tenses, spelling, letters, alphabetical order, rhymes, puns, anagrams,
acronyms, literal idioms, capitals, ciphers, phonetics, word counts, a third target language) and the sound
Chinese tasks next to each (成语, 病句, 拼音, 把/被, translating into English). A third is held out: the rules
were not tuned on it."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from culturalign.data.clean import english_context

CASES = [json.loads(line) for line in (Path(__file__).parent / "data" / "english_bound_cases.jsonl").read_text(
    encoding="utf-8").splitlines()]


def _bound(prompts: list[str], answers: list[str]) -> list[bool]:
    frame = pl.DataFrame({"prompt": prompts, "answer": answers})
    return frame.select(english_context(pl.col("prompt"), None, pl.col("answer"))).to_series().to_list()


@pytest.mark.parametrize("split, min_precision, min_recall", [("dev", 0.95, 0.85), ("heldout", 0.95, 0.75)])
def test_precision_and_recall_on_the_cases(split, min_precision, min_recall):
    rows = [r for r in CASES if r["split"] == split]
    found = _bound([r["prompt"] for r in rows], [r["answer"] for r in rows])
    hits = sum(r["english_bound"] and f for r, f in zip(rows, found))
    precision, recall = hits / sum(found), hits / sum(r["english_bound"] for r in rows)
    assert precision >= min_precision and recall >= min_recall, (split, precision, recall)


@pytest.mark.parametrize("prompt, answer, bound", [
    ("“尽可能快”的缩写是什么？", "ASAP", True),                        # an English acronym for a translated phrase
    ("北京大学的缩写是什么？", "北大", False),                          # a Chinese abbreviation
    ("解释习语“房间里的大象”。", "指显而易见却被忽视的问题。", True),   # an idiom rendered word by word
    ("用不超过三个单词描述你的心情。", "开心、放松", True),              # a word count of a short text
    ("用不超过100字描述你的家乡。", "我的家乡……", False),               # a length in characters
    ("凯撒密码的历史起源是什么？", "它得名于尤利乌斯·凯撒……", False),   # a question about a cipher
    ("把句子中的单词大写：我爱北京", "我爱北京", True),                   # capitals of translated words
    ("用括号中动词的正确形式填空：他昨天（去）了学校。", "去", True),       # a verb form Chinese does not have
    ("用“在”或“再”填空：我明天___来。", "再", False),                    # a Chinese fill-in
    ("“不要”的缩写形式是什么？", "don't", True),                            # an English contraction
    ("“不开心”这个词的前缀是什么？", "前缀是 un-，表示否定。", True),          # English morphology (un-happy)
    ("“老虎”的“老”是词缀吗？", "是，“老”在这里是前缀，没有实义。", False),      # Chinese morphology
    ("如何修改文件的后缀名？", "右键点击文件，选择重命名。", False),            # a file extension
    ("列出三个描述快乐的形容词。", "joyful, cheerful, glad", True),            # words answered in English
    ("把“苹果、香蕉、梨”翻译成英文。", "apple, banana, pear", False),          # translating into English
    ("列出三个表示颜色的词语。", "红色、蓝色、绿色", False),
    ("将以下句子拼接起来，形成通顺且语法正确的段落：今天下雨。我没带伞。", "今天下雨，我没带伞。", False),
])
def test_hand_written(prompt, answer, bound):
    assert _bound([prompt], [answer]) == [bound]
