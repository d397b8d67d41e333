"""Refinement (data stage, optional): weak answers are rewritten by an LLM for the Chinese context.

A row is weak when a configured rule flags its last assistant turn (refine.rules):
  too_short       fewer than min_answer_chars characters
  english_answer  a Chinese question answered with little Chinese text
  refusal         a refusal of a benign question (only for benign data: the knowledge stage; in safety
                  data a refusal is the wanted answer, so the caller passes benign=False)
  truncated       an answer that stops mid-sentence
  translated_code code whose keywords or identifiers were machine-translated (导入 numpy 为 np), which
                  the data stage leaves to refinement when refinement is on
  answer_language, answer_length, answer_count, degenerate (and truncated)
                  the data stage's answer checks (culturalign/data/answers.py), also left to refinement
                  when it is on; what a rewrite does not repair is dropped with that reason afterwards
Each weak row (up to max_rows) is sent to the configured judge (culturalign.llm) with a Chinese prompt.
A reply is accepted only if the same rules no longer flag it; it then replaces the last assistant
turn and `meta` records {"refined": true, "refine_reason", "original_answer"}. Otherwise, or when
no reply came back, the row keeps its original answer and is counted as refine_failed.
"""
from __future__ import annotations

import json
import logging
import re
import unicodedata

import polars as pl

from culturalign import llm
from culturalign.data.clean import answer_problem
from culturalign.data.code import translated_code_in
from culturalign.io import SCHEMA, frame

log = logging.getLogger(__name__)

# A text counts as Chinese when at least this share of its letters are CJK ideographs (the same
# threshold as the default `clean.cjk.min_share`).
MIN_CJK_SHARE = 0.3
CODE_BLOCK = re.compile(r"```.*?(?:```|$)", re.DOTALL)
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
REFUSAL_PHRASES = ("我不能", "我无法", "无法回答", "不能回答", "作为一个AI", "作为一个人工智能", "作为AI",
                   "作为人工智能", "作为一个语言模型", "作为一个AI语言模型", "抱歉，我", "对不起，我",
                   "I cannot", "I can't", "I'm sorry", "As an AI")
TERMINAL = set("。！？!?.…」』”\"'）)】]》>~～*`") | {"\u2019"}
CONTINUATION = set("，、,；;：:—-（(“")   # an answer ending in one of these was cut off
# A last line without terminal punctuation that is shorter than this and has no comma is a list
# item, title or code line, not a sentence that stops in the middle.
MIN_SENTENCE_CHARS = 20
REASON_TEXT = {"too_short": "回答过短", "english_answer": "用英文回答了中文问题",
               "refusal": "拒绝回答了一个正常的问题", "truncated": "回答不完整，像是被截断了",
               "translated_code": "代码的关键字或变量名被机器翻译成了中文，无法运行，请给出可运行的原始代码",
               "answer_language": "回答用的语言不是指令要求的语言",
               "answer_length": "回答的长度不符合指令规定的字数或句数",
               "answer_count": "回答给出的条目数量与指令要求的不一致",
               "degenerate": "回答在不断重复同样的内容"}
ROLE_NAMES = {"system": "系统", "user": "用户", "assistant": "助手"}
SYSTEM_PROMPT = "你是一位熟悉中国文化、历史、社会和法律的中文助手，回答准确、完整、得体。"
INSTRUCTION = ("下面是一段对话，其中助手的最后一个回答质量不佳（{reasons}）。请用中文重新写出这个回答："
               "准确、完整，符合中国的文化背景和语境；如果问题涉及违法、有害或不安全的内容，"
               "请礼貌地拒绝并给出正确的引导。只输出新的回答本身，不要任何解释或前缀。")


def cjk_share(text: str) -> float:
    """Share of CJK ideographs among the letters of `text` (digits, spaces, punctuation ignored)."""
    letters = [c for c in text if c.isalpha()]
    return sum(bool(CJK.match(c)) for c in letters) / len(letters) if letters else 0.0


def is_english(question: str, answer: str) -> bool:
    """A Chinese question answered in another language. Code blocks do not count as language: a
    Chinese question asking for code may get mostly code, and only the prose around it is judged."""
    prose = CODE_BLOCK.sub("", answer)
    has_letters = any(c.isalpha() for c in prose)
    return cjk_share(question) >= MIN_CJK_SHARE and has_letters and cjk_share(prose) < MIN_CJK_SHARE


def is_truncated(answer: str) -> bool:
    text = answer.rstrip()
    if not text:
        return False
    last = text[-1]
    if last in CONTINUATION:
        return True
    if last in TERMINAL or _is_symbol(last):
        return False
    last_line = text.splitlines()[-1].strip()
    return len(last_line) >= MIN_SENTENCE_CHARS or any(c in last_line for c in "，,；;")


def _is_symbol(char: str) -> bool:
    """Emoji and other symbols end a sentence as well as punctuation does."""
    return unicodedata.category(char).startswith("S")


def weak_reasons(question: str, answer: str, rules: dict, *, benign: bool = True,
                 translated_code: bool | None = None) -> list[str]:
    """The rules that flag `answer` to `question` as weak (empty list: a good answer).
    `translated_code`: whether the answer holds machine-translated code, when already known (a batch)."""
    text = answer.strip()
    reasons = []
    if len(text) < rules.get("min_answer_chars", 10):
        reasons.append("too_short")
    if rules.get("english_answer", True) and is_english(question, text):
        reasons.append("english_answer")
    if rules.get("refusal", True) and benign and any(p.lower() in text.lower() for p in REFUSAL_PHRASES):
        reasons.append("refusal")
    if rules.get("truncated", True) and is_truncated(text):
        reasons.append("truncated")
    if rules.get("translated_code", True) and (
            translated_code if translated_code is not None else translated_code_in([text])[0]):
        reasons.append("translated_code")
    return reasons


def _last_assistant(messages: list[dict]) -> int:
    return max(i for i, m in enumerate(messages) if m["role"] == "assistant")


def _question(messages: list[dict], answer_at: int) -> str:
    users = [m["content"] for m in messages[:answer_at] if m["role"] == "user"]
    return users[-1] if users else ""


def refine_messages(messages: list[dict], reasons: list[str]) -> list[dict]:
    """The prompt for one weak row: the dialogue up to and including the weak answer, then the ask."""
    dialogue = "\n\n".join(f"【{ROLE_NAMES.get(m['role'], m['role'])}】\n{m['content']}" for m in messages)
    instruction = INSTRUCTION.format(reasons="；".join(REASON_TEXT[r] for r in reasons))
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"{instruction}\n\n{dialogue}"}]


def _problem(messages: list[dict], clean_cfg: dict | None) -> str | None:
    """The first answer check of the data stage that fails on one dialogue (None: none)."""
    one = pl.DataFrame({"messages": [messages]})
    return one.select(answer_problem(pl.col("messages"), clean_cfg)).item()


def refine_frame(rows: pl.DataFrame, refine_cfg: dict, judge_cfg: dict, cache_path: str,
                 usage_path: str | None, *, benign: bool = True, clean_cfg: dict | None = None
                 ) -> tuple[pl.DataFrame, dict]:
    """Rows with weak answers rewritten where an acceptable rewrite came back; plus the counts.

    `benign` says the questions are harmless (knowledge data), so a refusal is a weak answer;
    pass False for safety data. `clean_cfg`: the source's `clean` block, whose answer checks also flag
    rows and judge rewrites. Rows, order and ids are unchanged; only refined rows differ.
    """
    rules = refine_cfg.get("rules") or {}
    records = rows.to_dicts()
    last = [_last_assistant(rec["messages"]) for rec in records]
    code = translated_code_in([rec["messages"][at]["content"] for rec, at in zip(records, last)])
    problems = rows.select(answer_problem(pl.col("messages"), clean_cfg)).to_series().to_list()
    flagged = []   # (row index, answer index, reasons)
    for i, (rec, at) in enumerate(zip(records, last)):
        reasons = weak_reasons(_question(rec["messages"], at), rec["messages"][at]["content"], rules,
                               benign=benign, translated_code=code[i])
        reasons += [problems[i]] if problems[i] and problems[i] not in reasons else []
        if reasons:
            flagged.append((i, at, reasons))
    max_rows = refine_cfg.get("max_rows")
    to_send = flagged if max_rows is None else flagged[:max_rows]
    stats = {"refined": 0, "refine_failed": 0, "refine_flagged": len(flagged),
             "refine_skipped": len(flagged) - len(to_send)}
    if not to_send:
        return rows, stats

    backend = llm.make_backend(judge_cfg, cache_path, usage_path)
    try:
        replies = backend.complete([refine_messages(records[i]["messages"][:at + 1], reasons)
                                    for i, at, reasons in to_send])
    finally:
        backend.close()
    for (i, at, reasons), reply in zip(to_send, replies):
        rec = records[i]
        question = _question(rec["messages"], at)
        if reply is None or weak_reasons(question, reply, rules, benign=benign) or _problem(
                rec["messages"][:at] + [{**rec["messages"][at], "content": reply.strip()}], clean_cfg):
            stats["refine_failed"] += 1
            continue
        original = rec["messages"][at]["content"]
        rec["messages"][at] = {**rec["messages"][at], "content": reply.strip()}
        meta = json.loads(rec["meta"]) if rec["meta"] else {}
        meta.update(refined=True, refine_reason=",".join(reasons), original_answer=original)
        rec["meta"] = json.dumps(meta, ensure_ascii=False)
        stats["refined"] += 1
    log.info("refine: %d flagged, %d sent, %d refined, %d failed", len(flagged), len(to_send),
             stats["refined"], stats["refine_failed"])
    return frame(records, SCHEMA), stats
