"""Cleaning of one training source: text normalisation and the drop filters, vectorised with polars.

`clean_frame(rows, cfg)` returns the kept rows (their messages normalised), the dropped rows (as they
came in, with `drop_reason`) and a {reason: count} summary. Every filter is switched and tuned by the
`clean` config block (DEFAULTS below fills keys the config leaves out). A row gets exactly one reason:
the first filter, in this order, that catches it; cheap per-row checks run first, then the ones that
look across rows (contamination, exact and near duplicates) on the rows still alive:

  human_rejected    id marked "reject" in the source's review decisions file
  empty_turn        no messages, no user or no assistant turn, or a user/assistant turn that is empty
  mojibake          U+FFFD, 锟斤拷/烫烫烫, or UTF-8 read as Latin-1/cp1252 (Ã©, â€™, ä¸­æ–‡)
  too_short_prompt / too_long_prompt / too_short_answer / too_long_answer
                    characters of all user turns (prompt) / all assistant turns (answer); a short
                    answer that is right for its task is kept (SHORT_ANSWER_FITS: a number for a
                    calculation, yes/no for a yes/no question, a label for a classification or a
                    choice, a name for an extraction)
  missing_content   the task needs a text, picture, link, attachment or video that is not in the row
                    (culturalign/data/answers.py; a row that only carries a URL goes here)
  english_context   an English-bound task by what it asks (culturalign/data/english_context.yaml, or cfg
                    path; rules read the prompt and, where a rule says so, the answer); with
                    `english_context.judge`, an LLM decides the rows only a hint fired on (ask: unsure)
                    or all rows (ask: all), and meta records {english, by: rule|llm, rule}
  translated_code   code or markup in any language with machine-translated keywords, tags, types or
                    identifiers, or full-width syntax (culturalign/data/code.py)
  low_cjk_share     CJK characters / non-space characters of the conversation (fenced code left out; a
                    prompt asking for English is judged alone) < cjk.min_share
  answer_language / answer_length / answer_count / degenerate / truncated
                    the answer checks of culturalign/data/answers.py (`answers:` switches); with
                    refinement on they (and translated code in an answer) are left to refinement
  judge_english_bound / judge_translated_code / judge_broken
                    the judge's second opinion on flagged rows (`second_opinion.judge`,
                    culturalign/data/opinion.py)
  contaminated      prompt overlaps an evaluation question (culturalign/data/decontam.py)
  exact_duplicate   same dedup key as an earlier row (the first one is kept)
  near_duplicate    MinHash near duplicate of an earlier row's dedup key (culturalign/data/dedup.py)

HTML entities (`html_entities: true`): machine-translated sets scraped from the web carry &lt; &gt;
&quot; &#39; &amp;lt; in every field; they are unescaped in every turn before anything else (so they
neither lower the CJK share nor hide duplicates) and the rows changed are counted (`normalized`).

Dedup key: the conversation after normalisation, NFKC, lower case, with all punctuation (full- and
half-width: 。！，, “” 《》 ...) and whitespace removed, turns separated by U+0001. Machine translation
and scraping vary exactly these (。 vs ！ at the end, ， vs ,), which leaves two copies of one row far
apart in character n-grams; on the key they are the same text, or nearly.

Normalisation (`normalize: true`): NFKC, except the Chinese full-width punctuation ，！？：；（）～ and
the ellipsis … which NFKC would turn into ASCII , ! ? : ; ( ) ~ ... (CJK punctuation such as 。、「」《》“”
is untouched by NFKC anyway); full-width letters and digits (Ａ１) and the ideographic space do become
ASCII. Then line breaks become \n, control and invisible format characters (zero-width space, BOM,
soft hyphen) are removed, runs of spaces/tabs inside a line become one space (leading indentation is
kept, for code), trailing spaces are cut, three or more line breaks become two, and each turn is
stripped. Mojibake is detected on the raw text, because NFKC and control-character removal rewrite
the very characters that betray it.
"""
from __future__ import annotations

import html
import json
import logging
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import polars as pl
import yaml

from culturalign import io
from culturalign.data import answers, opinion
from culturalign.data.code import translated_code
from culturalign.data.decontam import contaminated
from culturalign.data.dedup import near_duplicates
from culturalign.data.mix import stratified_sample
from culturalign.util import deep_merge, package_data

log = logging.getLogger(__name__)

DEFAULTS: dict = {
    "html_entities": True,
    "normalize": True,
    "to_simplified": False,
    "mojibake": True,
    "length": {"enabled": True, "min_prompt": 2, "max_prompt": 4000, "min_answer": 2, "max_answer": 8000},
    "cjk": {"enabled": True, "min_share": 0.3},
    "english_context": {"enabled": True, "rules": None, "judge": None, "ask": "unsure"},
    "translated_code": True,
    # the answer checks of culturalign/data/answers.py, one switch each
    "answers": {name: True for name in answers.CHECKS},
    # the judge second opinion on flagged rows (culturalign/data/opinion.py): a judges: name, or null
    "second_opinion": {"judge": None, "ask": "flagged", "max_rows": None},
    "exact_dedup": True,
    "near_dedup": {"enabled": True, "threshold": 0.7, "ngram": 5, "num_perm": 128, "seed": 1},
    "decontaminate": {"enabled": True, "ngram": 8, "threshold": 0.5},
}

# Full-width punctuation that Chinese text uses and NFKC would make ASCII: kept by swapping it for
# characters of the supplementary private use area (U+F0000...) around NFKC, which NFKC leaves alone
# (those placeholders never occur in real text; if they did, they would come out as this punctuation).
PROTECTED = "，！？：；（）～…"
_PLACEHOLDERS = [chr(0xF0000 + i) for i in range(len(PROTECTED))]
_CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\x{200B}\x{200E}\x{200F}\x{2060}\x{FEFF}\x{00AD}]"
# cp1252 characters that bytes 0x80-0x9F become, plus Latin-1 0xA0-0xBF: UTF-8 continuation bytes.
_CONT = r"[\x{80}-\x{BF}\x{152}\x{153}\x{160}\x{161}\x{178}\x{17D}\x{17E}\x{192}\x{2C6}\x{2DC}" \
        r"\x{2013}\x{2014}\x{2018}-\x{201E}\x{2020}-\x{2022}\x{2026}\x{2030}\x{2039}\x{203A}\x{20AC}\x{2122}]"
MOJIBAKE = (r"\x{FFFD}|锟斤拷|烫烫烫|屯屯屯"
            rf"|[\x{{C2}}-\x{{DF}}]{_CONT}"     # a 2-byte UTF-8 sequence read as Latin-1/cp1252: Ã©, Â
            rf"|[\x{{E0}}-\x{{EF}}]{_CONT}{{2}}")  # a 3-byte one (every Chinese character): ä¸­, â€™
# A Chinese prompt that wants English words besides a translation (用英文写, 英文名字): its answer is English.
ENGLISH_WANTED = r"用英[文语]|英[文语](?:单词|句子|名字|名称|标题|口号|短语|版本)"
# Everything but ideographs, CJK punctuation and full-width forms: deleting its runs leaves the CJK characters.
NOT_CJK = r"[^\p{Han}\x{3000}-\x{303F}\x{FF00}-\x{FFEF}]+"

# A named (&lt;), decimal (&#39;) or hexadecimal (&#x27;) character reference, always with its ';'
# (html.unescape alone would also turn "&copy=2" inside a URL into "©=2").
ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
_ENTITY_RE = re.compile(ENTITY)
_KEY_DROP = r"[\p{P}\s]+"  # punctuation (any width) and whitespace: not part of the dedup key
_TURN_SEP = "\x01"

# Short answers that are complete for their task: (answer shape, what the prompt must ask). The answer
# is the whole assistant text; prompts that ask for writing or explaining never get a short answer.
_WORDS = r"^[\p{Han}A-Za-z0-9·]+[。.!！]?$"
SHORT_ANSWER_FITS = [
    (r"^[-+−]?[0-9]+([.,/][0-9]+)*\s*(%|[\p{Han}A-Za-z]{0,2})[。.]?$",
     r"[0-9]|计算|等于|多少|几|求|算|总和|总数|平均|乘|除|加|减|得数"),
    (r"(?i)^(是|否|对|错|不是|不对|是的|不|有|没有|能|不能|会|不会|可以|不可以|正确|错误|真|假|yes|no|true|false)[。.!！]?$",
     r"(?i)吗|是否|是不是|对不对|对吗|能否|可否|判断|正确|真假|对错|有没有|会不会|能不能|可不可以|yes|no|true|false"),
    (_WORDS, r"分类|归类|类别|属于|哪一类|哪类|哪种|哪个|哪一个|哪项|哪位|选择|选出|挑出|标签|情感|情绪|类型"),
    (_WORDS, r"提取|抽取|找出|指出|识别|是谁|谁|名字|名称|哪里|首都|作者"),
]
# Fillers are no answer to any task, whatever the prompt asks ("长城起源于哪个朝代？" -> "好").
FILLER = r"(?i)^(好|好的|嗯|哦|啊|呃|行|ok|okay|谢谢|不知道)[。.!！]?$"
NEEDS_LONG_ANSWER = r"写一|写出一|创作|描述|解释|介绍|列出|列举|说明|总结|翻译|设计|编写|讨论|分析|论述|故事|文章|短文|段落"

CONTENT = pl.element().struct.field("content")
ROLE = pl.element().struct.field("role")


def resolve(cfg: dict | None) -> dict:
    """The `clean` block with DEFAULTS under every key it leaves out."""
    return deep_merge(DEFAULTS, cfg or {})


def normalize_text(text: pl.Expr) -> pl.Expr:
    """The normalisation of the module doc, as one expression over a string column."""
    return (text.str.replace_many(list(PROTECTED), _PLACEHOLDERS)
            .str.normalize("NFKC")
            .str.replace_many(_PLACEHOLDERS, list(PROTECTED))
            .str.replace_all(r"\r\n?", "\n")
            .str.replace_all(_CONTROL, "")
            .str.replace_all(r"(\S)[^\S\n]+", "${1} ")
            .str.replace_all(r"[^\S\n]+\n", "\n")
            .str.replace_all(r"\n{3,}", "\n\n")
            .str.strip_chars())


@lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC  # imported only when the conversion is switched on
    return OpenCC("t2s")


def unescape_html(text: str) -> str:
    """Text with its character references replaced, repeatedly: scraped data is often escaped twice
    (&amp;lt; -> &lt; -> <). Unknown names (&foo;) stay as they are."""
    for _ in range(3):
        new = _ENTITY_RE.sub(lambda m: html.unescape(m[0]), text)
        if new == text:
            break
        text = new
    return text


def unescape_entities(messages: pl.Series) -> tuple[pl.Series, int]:
    """(messages with HTML entities unescaped in every turn, number of rows that changed).

    Only rows with an entity go through Python (html.unescape has no vectorised form); on translated
    alpaca data that is a few percent of the rows.
    """
    candidates = pl.select(messages.list.eval(CONTENT.str.contains(ENTITY)).list.any()).to_series().fill_null(False)
    index = candidates.arg_true()
    if index.is_empty():
        return messages, 0
    changed, values = 0, [None] * len(messages)  # null where nothing changes: coalesced with the input
    for i, turns in zip(index.to_list(), messages.gather(index).to_list()):
        new = [{**turn, "content": unescape_html(turn["content"]) if turn["content"] else turn["content"]}
               for turn in turns]
        changed += new != turns
        values[i] = new
    replaced = pl.Series(messages.name, values, dtype=messages.dtype)
    return pl.select(pl.coalesce(replaced, messages)).to_series(), changed


def dedup_key(messages: pl.Expr) -> pl.Expr:
    """The key exact and near dedup compare (module doc): punctuation, whitespace and case folded."""
    folded = CONTENT.str.normalize("NFKC").str.to_lowercase().str.replace_all(_KEY_DROP, "")
    return messages.list.eval(folded).list.join(_TURN_SEP)


def _map_content(messages: pl.Expr, fn) -> pl.Expr:
    return messages.list.eval(pl.struct(ROLE.alias("role"), fn(CONTENT).alias("content")))


def to_simplified(text: pl.Expr) -> pl.Expr:
    # OpenCC converts one Python string at a time (no batch API): the one per-element loop here.
    return text.map_elements(_t2s().convert, return_dtype=pl.String, skip_nulls=True)


class Rule(NamedTuple):
    """One English-context rule: the prompt matches every regex of `pattern` (one, or a list that must
    all match) and not `unless`, and, where given, the answer matches `answer` and not `answer_unless`
    (all case-insensitive)."""
    pattern: tuple[str, ...]
    unless: str | None
    why: str
    answer: str | None = None
    answer_unless: str | None = None


def _regex(path: str | os.PathLike, value: object, index: int, field: str, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise io.InputError(path, f"each rule needs a non-empty string '{field}'", record=index, field=field)
    try:  # polars' own regex engine decides what is valid, not Python's re
        pl.Series([""]).str.contains(value)
    except pl.exceptions.ComputeError as err:
        raise io.InputError(path, f"invalid regular expression: {err}", record=index, field=field) from err
    return "(?i)" + value


def load_rules(path: str | os.PathLike | None, key: str = "rules") -> tuple[Rule, ...]:
    """The rules (or, with key="hints", the optional hints) of an English-context rules file
    (default: the packaged one), checked."""
    path = path or package_data("data/english_context.yaml")
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise io.InputError(path, f"cannot read the English-context rules: {err}") from err
    rules = data.get(key) if isinstance(data, dict) else None
    if key == "hints" and rules is None:
        return ()
    if not isinstance(rules, list) or not rules:
        raise io.InputError(path, f"expected a non-empty list under '{key}:'", field=key)
    loaded = []
    for index, rule in enumerate(rules):
        rule = rule if isinstance(rule, dict) else {}
        patterns = rule.get("pattern") if isinstance(rule.get("pattern"), list) else [rule.get("pattern")]
        loaded.append(Rule(tuple(_regex(path, p, index, "pattern", True) for p in patterns),
                           _regex(path, rule.get("unless"), index, "unless", False), str(rule.get("why", "")),
                           _regex(path, rule.get("answer"), index, "answer", False),
                           _regex(path, rule.get("answer_unless"), index, "answer_unless", False)))
    return tuple(loaded)


def rule_hits(text: pl.Expr, rules: tuple[Rule, ...], answer: pl.Expr | None = None) -> list[pl.Expr]:
    """One boolean expression per rule: does it fire on the prompt `text` (and its `answer`; without
    one, a rule's answer conditions are not checked)."""
    hits = []
    for r in rules:
        hit = pl.all_horizontal([text.str.contains(p) for p in r.pattern])
        hit = hit if r.unless is None else hit & ~text.str.contains(r.unless)
        if answer is not None and r.answer is not None:
            hit = hit & answer.str.contains(r.answer)
        if answer is not None and r.answer_unless is not None:
            hit = hit & ~answer.str.contains(r.answer_unless)
        hits.append(hit)
    return hits


# Stand-ins that are no English, whatever their letters: <mask> fill-ins and links (a row that is only a
# link is missing content, see culturalign/data/answers.py).
NOT_ENGLISH = r"(?i)<mask>|\[mask\]|https?://\S+|www\.[\w-]+\.\S+"


def rule_text(text: pl.Expr) -> pl.Expr:
    """`text` as the English-context rules read it: NOT_ENGLISH replaced by a neutral mark."""
    return text.str.replace_all(NOT_ENGLISH, "□")


def first_fired(text: pl.Expr, rules: tuple[Rule, ...], answer: pl.Expr | None = None) -> pl.Expr:
    """The `why` of the first rule that fires on `text` (null when none): which rule made the call."""
    chain = None
    text = rule_text(text)
    for rule, hit in zip(rules, rule_hits(text, rules, answer)):
        chain = (pl.when if chain is None else chain.when)(hit).then(pl.lit(rule.why))
    return pl.lit(None, pl.String) if chain is None else chain.otherwise(pl.lit(None, pl.String))


def english_context(text: pl.Expr, rules_path: str | os.PathLike | None, answer: pl.Expr | None = None) -> pl.Expr:
    """True where some rule of the rules file fires on `text` (a prompt) and its `answer`."""
    return first_fired(text, load_rules(rules_path), answer).is_not_null()


def _joined(messages: pl.Expr, role: str | None) -> pl.Expr:
    contents = CONTENT if role is None else CONTENT.filter(ROLE == role)
    return messages.list.eval(contents).list.join("\n")


def _chars(messages: pl.Expr, role: str) -> pl.Expr:
    return messages.list.eval(pl.when(ROLE == role).then(CONTENT.str.len_chars()).otherwise(0)).list.sum()


def _cjk_share(text: pl.Expr) -> pl.Expr:
    """CJK characters / non-space characters of `text`, code blocks left out (0 for no characters)."""
    prose = text.str.replace_all(answers.CODE_BLOCK, "")
    non_space = prose.str.len_chars() - prose.str.count_matches(r"\s")
    return (prose.str.replace_all(NOT_CJK, "").str.len_chars() / non_space).fill_nan(0.0).fill_null(0.0)


def _row_checks(cfg: dict, human_rejected: frozenset[str] | set[str], refining: bool = False
                ) -> list[tuple[str, pl.Expr]]:
    """(reason, condition) of the per-row filters, in order; columns: see `_features`. `refining`:
    refinement is on, so the answer problems it may repair (REFINABLE, translated code in an answer) are
    left to it, and only a prompt with translated code is dropped here."""
    checks = [("human_rejected", pl.col("id").is_in(sorted(human_rejected))),
              ("empty_turn", pl.col("empty"))]
    if cfg["mojibake"]:
        checks.append(("mojibake", pl.col("mojibake")))
    length = cfg["length"]
    if length["enabled"]:
        checks += [("too_short_prompt", pl.col("prompt_chars") < length["min_prompt"]),
                   ("too_long_prompt", pl.col("prompt_chars") > length["max_prompt"]),
                   ("too_short_answer", (pl.col("answer_chars") < length["min_answer"]) & ~short_answer_fits()),
                   ("too_long_answer", pl.col("answer_chars") > length["max_answer"])]
    on = cfg["answers"]
    found = answers.answer_checks(pl.col("prompt"), pl.col("answer"))
    if on["missing_content"]:   # before the CJK share and English context: a bare URL is missing content
        checks.append(("missing_content", found["missing_content"]))
    # English context and translated code before the CJK share: an English-bound task or translated code
    # with little Chinese in it is dropped for what it is, not for its letters.
    if cfg["english_context"]["enabled"]:
        checks.append(("english_context", pl.col("english")))  # the rules' or the judge's verdict
    if cfg["translated_code"]:
        checks.append(("translated_code", translated_code(pl.col("prompt" if refining else "text"))))
    if cfg["cjk"]["enabled"]:
        # Code blocks are no language (a Chinese question may rightly get mostly code), and a Chinese prompt
        # that asks for English (翻译成英文, 用英语写) is judged on the prompt alone: its answer is meant to be
        # English. So is every prompt when refining: an answer in the wrong language is refinement's to fix.
        asks_english = pl.col("prompt").str.contains(answers.INTO_ENGLISH + "|" + ENGLISH_WANTED) | pl.lit(refining)
        # A Chinese instruction with a Chinese answer is Chinese even when its input is English material
        # (a price list of English product names, an English passage to summarise in Chinese); so is one
        # answered with code alone, fenced or not (the answer's code lines are no language either).
        least = cfg["cjk"]["min_share"]
        share = _cjk_share(pl.when(asks_english).then(pl.col("prompt")).otherwise(pl.col("text")))
        answer_prose = pl.col("answer").str.replace_all(answers.CODE_BLOCK, "").str.replace_all(answers.CODE_LINE, "")
        chinese_ends = (_cjk_share(pl.col("prompt").str.extract(r"^([^\n]*)", 1)) >= least) \
            & ((_cjk_share(answer_prose) >= least) | ~answer_prose.str.contains(r"[A-Za-z\p{Han}]"))
        checks.append(("low_cjk_share", (share < least) & ~chinese_ends))
    checks += [(name, found[name]) for name in REFINABLE if on[name] and not refining]
    return checks


REFINABLE = ("answer_language", "answer_length", "answer_count", "degenerate", "truncated")


def answer_problem(messages: pl.Expr, cfg: dict | None) -> pl.Expr:
    """The first answer check (of those refinement may repair: REFINABLE, plus translated code in the
    answer) that still fails on a row, or null: what refinement did not fix is dropped with it."""
    cfg = resolve(cfg)
    prompt, answer = _joined(messages, "user"), _joined(messages, "assistant")
    checks = answers.answer_checks(prompt, answer)
    conditions = [(name, checks[name]) for name in REFINABLE if cfg["answers"][name]]
    conditions = ([("translated_code", translated_code(answer))] if cfg["translated_code"] else []) + conditions
    return _first_reason(conditions)


def short_answer_fits(prompt: pl.Expr = pl.col("prompt"), answer: pl.Expr = pl.col("answer")) -> pl.Expr:
    """True where a (short) answer has the shape its prompt asks for (SHORT_ANSWER_FITS)."""
    fits = [answer.str.strip_chars().str.contains(shape) & prompt.str.contains(asks)
            for shape, asks in SHORT_ANSWER_FITS]
    return (pl.any_horizontal(fits) & ~prompt.str.contains(NEEDS_LONG_ANSWER)
            & ~answer.str.strip_chars().str.contains(FILLER))


def _features(rows: pl.DataFrame, cfg: dict) -> pl.DataFrame:
    """Input rows plus the cleaned messages and the per-row values the filters read."""
    messages = pl.col("messages")
    if cfg["normalize"]:
        messages = _map_content(messages, normalize_text)
    if cfg["to_simplified"]:
        messages = _map_content(messages, to_simplified)
    raw_text = _joined(pl.col("messages"), None)
    spoken = ROLE.is_in(["user", "assistant"])
    blank = spoken & (CONTENT.is_null() | (CONTENT.str.strip_chars() == ""))
    english = cfg["english_context"]
    rules = load_rules(english["rules"]) if english["enabled"] else ()
    hints = load_rules(english["rules"], "hints") if english["enabled"] and english["judge"] else ()
    return (rows.with_row_index("_row")
            .with_columns(mojibake=raw_text.str.contains(MOJIBAKE).fill_null(False), clean=messages)
            .with_columns(
                empty=(pl.col("clean").list.len().fill_null(0) == 0)
                | pl.col("clean").list.eval(blank).list.any()
                | ~pl.col("clean").list.eval(ROLE == "user").list.any()
                | ~pl.col("clean").list.eval(ROLE == "assistant").list.any(),
                prompt=_joined(pl.col("clean"), "user"),
                answer=_joined(pl.col("clean"), "assistant"),
                text=_joined(pl.col("clean"), None),
                key=dedup_key(pl.col("clean")),
                prompt_chars=_chars(pl.col("clean"), "user"),
                answer_chars=_chars(pl.col("clean"), "assistant"))
            .with_columns(english_why=first_fired(pl.col("prompt"), rules, pl.col("answer")),
                          english_hint=first_fired(pl.col("prompt"), hints).is_not_null())
            .with_columns(english=pl.col("english_why").is_not_null(), english_by=pl.lit("rule")))


def _first_reason(checks: list[tuple[str, pl.Expr]]) -> pl.Expr:
    chain = None
    for reason, condition in checks:
        chain = (pl.when if chain is None else chain.when)(condition.fill_null(False)).then(pl.lit(reason))
    return pl.lit(None, pl.String) if chain is None else chain.otherwise(pl.lit(None, pl.String))


def _mark(work: pl.DataFrame, reason: str, find) -> pl.DataFrame:
    """Give `reason` to the alive rows (no reason yet) for which `find(alive) -> bool mask` is True."""
    alive = work.filter(pl.col("drop_reason").is_null())
    if alive.is_empty():
        return work
    hit = alive["_row"].filter(pl.Series(find(alive), dtype=pl.Boolean))
    return work.with_columns(drop_reason=pl.when(pl.col("_row").is_in(hit.implode()))
                             .then(pl.lit(reason)).otherwise(pl.col("drop_reason")))


def reasons(cfg: dict, *, decontaminate: bool = True) -> list[str]:
    """The drop reasons the configured filters can give, in filter order."""
    cfg = resolve(cfg)
    names = [name for name, _ in _row_checks(cfg, set())]
    names += [f"judge_{verdict}" for verdict in opinion.VERDICTS] if cfg["second_opinion"]["judge"] else []
    names += ["contaminated"] if cfg["decontaminate"]["enabled"] and decontaminate else []
    names += ["exact_duplicate"] if cfg["exact_dedup"] else []
    names += ["near_duplicate"] if cfg["near_dedup"]["enabled"] else []
    return names


class Cleaned(NamedTuple):
    kept: pl.DataFrame      # SCHEMA, messages normalised
    rejected: pl.DataFrame  # REJECTED_SCHEMA, messages as they came in (for the reviewer)
    dropped: dict[str, int]  # {reason: count}
    notes: dict             # for stats.json: {"normalized": {"html_entities": rows}, "sample": {...} if sampled}


def meta_field(meta: pl.Expr, field: str) -> pl.Expr:
    """One top-level field of the JSON `meta` column, as a string (null where absent)."""
    return meta.str.json_path_match("$." + field if re.fullmatch(r"[A-Za-z_]\w*", field) else f"$['{field}']")


def _keys(meta: str | None) -> list[str]:
    try:
        value = json.loads(meta or "{}")
    except ValueError:
        return []
    return list(value) if isinstance(value, dict) else []


def sample_rows(kept: pl.DataFrame, sample: dict, source: str) -> tuple[pl.Series, dict]:
    """(mask of the kept rows taken, the `sample` note for stats.json) for a source's
    `sample: {n, stratify_by, seed}` (DESIGN.md): n rows, each stratum of the meta field
    `stratify_by` keeping its share (culturalign.data.mix.stratified_sample)."""
    n, seed, field = int(sample["n"]), int(sample.get("seed", 0)), sample.get("stratify_by")
    strata = None
    if field:
        strata = kept.select(meta_field(pl.col("meta"), field)).to_series()
        if kept.height and strata.null_count() == kept.height:
            fields = sorted({key for meta in kept["meta"].head(1000).to_list() for key in _keys(meta)})
            raise io.InputError(f"source '{source}'", f"no row has the meta field "
                                f"{field!r} (meta fields: {', '.join(fields) or 'none'})", field="sample.stratify_by")
    note = {"n": n, "seed": seed, "stratify_by": field}
    if n >= kept.height:
        note["warning"] = f"sample.n = {n} is not less than the {kept.height} cleaned rows: all kept"
        log.warning("source %s: %s", source, note["warning"])
    taken = stratified_sample(kept, n, seed, strata)
    if strata is not None:
        counts = pl.DataFrame({"s": strata.fill_null("(missing)"), "t": taken}).group_by("s").agg(
            rows=pl.len(), taken=pl.col("t").sum()).sort("s")
        note["strata"] = {s: {"rows": r, "taken": t} for s, r, t in counts.iter_rows()}
    return taken, note


ENGLISH_JUDGE_PROMPT = (
    "你在为中文大模型清洗指令数据，其中很多是从英文机器翻译过来的。判断下面这条指令是否只有在英语语境下才有意义："
    "例如关于英文字母、拼写、押韵或头韵、发音、英文单词或语法、英文文字游戏，或者答案取决于美国等英语国家的本地制度。"
    "中文诗词押韵、中文语法、把英文翻译成中文、只是提到美国或美元的问题，都不算。只回答“是”或“否”。")


def _verdict(reply: str | None) -> bool | None:
    """The judge's yes/no (是/否, yes/no), None when the reply says neither."""
    text = (reply or "").strip().lstrip("“\"'「*").lower()
    if text.startswith(("否", "不是", "no")):
        return False
    if text.startswith(("是", "yes")):
        return True
    return None


def judge_english(prompts: list[str], judge_cfg: dict, cache: str | None, usage: str | None) -> list[bool | None]:
    """An LLM's verdict per prompt: English context or not (None: no usable reply). Cached, budgeted,
    concurrent: culturalign.llm."""
    from culturalign import llm  # the OpenAI client is imported only when a judge is configured
    backend = llm.make_backend(judge_cfg, cache, usage)
    try:
        replies = backend.complete([[{"role": "system", "content": ENGLISH_JUDGE_PROMPT},
                                     {"role": "user", "content": p}] for p in prompts], temperature=0.0, max_tokens=4)
    finally:
        backend.close()
    return [_verdict(r) for r in replies]


def _second_opinion(work: pl.DataFrame, earlier: pl.Expr, ask: str, judge_cfg: dict, cache: str | None,
                    usage: str | None) -> tuple[pl.DataFrame, dict]:
    """Ask the judge about the rows no earlier filter drops: those only a hint fired on (ask
    "unsure") or all of them (ask "all"); its verdict replaces the rules' where it gave one."""
    unsure = pl.col("english_hint") & ~pl.col("english")
    asked = work.select(earlier.is_null() & (unsure if ask == "unsure" else pl.lit(True))).to_series()
    index = asked.arg_true()
    verdicts = judge_english(work["prompt"].gather(index).to_list(), judge_cfg, cache, usage) if len(index) else []
    llm = pl.Series([None] * work.height, dtype=pl.Boolean).scatter(index, pl.Series(verdicts, dtype=pl.Boolean)) \
        if len(index) else pl.Series([None] * work.height, dtype=pl.Boolean)
    work = work.with_columns(english_rule=pl.col("english"), english_llm=llm).with_columns(
        english=pl.coalesce("english_llm", "english"),
        english_by=pl.when(pl.col("english_llm").is_not_null()).then(pl.lit("llm")).otherwise(pl.lit("rule")))
    answered = work.filter(pl.col("english_llm").is_not_null())
    note = {"asked": len(index), "failed": len(index) - answered.height,
            "llm_english": int(answered["english_llm"].sum()),
            "disagree": int((answered["english_llm"] != answered["english_rule"]).sum())}
    log.info("english_context judge: %s", note)
    return work, note


def _with_verdicts(work: pl.DataFrame) -> pl.Series:
    """meta with {"english_context": {"english", "by": rule|llm, "rule": why or null}} on every row a
    rule fired on or the judge answered."""
    metas = work["meta"].to_list()
    decided = work.select("english", "english_by", "english_why", "english_rule")
    for i, (english, by, why, rule) in enumerate(decided.iter_rows()):
        if by == "llm" or rule:
            meta = json.loads(metas[i] or "{}")
            meta["english_context"] = {"english": english, "by": by, "rule": why}
            metas[i] = json.dumps(meta, ensure_ascii=False)
    return pl.Series("meta", metas, dtype=pl.String)


def clean_frame(rows: pl.DataFrame, cfg: dict | None, *, eval_questions: list[str] | tuple[str, ...] = (),
                human_rejected: frozenset[str] | set[str] = frozenset(), sample: dict | None = None,
                english_judge: dict | None = None, llm_cache: str | None = None, llm_usage: str | None = None,
                refining: bool = False, opinion_judge: dict | None = None,
                opinion_usage: str | None = None) -> Cleaned:
    """Kept rows, dropped rows with their reason, {reason: count} and notes (see `Cleaned`).

    `dropped` has a count, zero included, for every reason the enabled filters can give, in filter
    order (then `sampled_out` when `sample` is given); decontamination runs only when
    `eval_questions` is non-empty. `sample` (a source's `sample:` entry) is applied to the rows
    that survive every filter; the rows not taken are dropped as `sampled_out`. `english_judge`: the
    judges: entry that `clean.english_context.judge` names (with `llm_cache`, `llm_usage` as for
    refinement); required when that key is set. `refining` (refinement is on): machine-translated code
    in an answer and the answer problems refinement may repair (REFINABLE) are left to it, and only a
    prompt with translated code is dropped here. `opinion_judge`: the judges: entry that
    `clean.second_opinion.judge` names (required when that key is set; `opinion_usage` its usage file).
    `notes["filters"]` lists the filters that ran, `notes["second_opinion"]` what the judge did (or
    {"on": false}).
    """
    cfg = resolve(cfg)
    rows = rows.select(list(io.SCHEMA))
    normalized = {"html_entities": 0}
    raw = rows["messages"]
    if cfg["html_entities"]:
        unescaped, normalized["html_entities"] = unescape_entities(raw)
        rows = rows.with_columns(messages=unescaped)
    work = _features(rows, cfg).with_columns(raw=raw)
    checks = _row_checks(cfg, human_rejected, refining)
    notes: dict = {"normalized": normalized}
    if cfg["english_context"]["enabled"] and cfg["english_context"]["judge"]:
        if english_judge is None:
            raise ValueError(f"clean.english_context.judge is {cfg['english_context']['judge']!r} but no judge "
                             "config was passed to clean_frame (english_judge=)")
        before = checks[:[reason for reason, _ in checks].index("english_context")]
        work, notes["english_context"] = _second_opinion(work, _first_reason(before), cfg["english_context"]["ask"],
                                                         english_judge, llm_cache, llm_usage)
    # lazily: the optimiser computes an expression that several checks share (a gated text, a share) once
    work = work.lazy().with_columns(drop_reason=_first_reason(checks)).collect()
    notes["second_opinion"] = {"on": False}
    if cfg["second_opinion"]["judge"]:
        if opinion_judge is None:
            raise ValueError(f"clean.second_opinion.judge is {cfg['second_opinion']['judge']!r} but no judge "
                             "config was passed to clean_frame (opinion_judge=)")
        work, notes["second_opinion"] = opinion.second_opinion(work, cfg["second_opinion"], opinion_judge,
                                                               llm_cache, opinion_usage)
    decon = cfg["decontaminate"]
    if decon["enabled"] and eval_questions:
        work = _mark(work, "contaminated", lambda alive: contaminated(
            alive["prompt"].to_list(), list(eval_questions), decon["ngram"], decon["threshold"]))
    if cfg["exact_dedup"]:
        work = _mark(work, "exact_duplicate", lambda alive: ~alive["key"].is_first_distinct())
    near = cfg["near_dedup"]
    if near["enabled"]:
        work = _mark(work, "near_duplicate", lambda alive: near_duplicates(
            alive["key"].to_list(), threshold=near["threshold"], ngram=near["ngram"],
            num_perm=near["num_perm"], seed=near["seed"]))
    if sample:
        source = rows["source"][0] if rows.height else "?"
        taken, notes["sample"] = sample_rows(work.filter(pl.col("drop_reason").is_null()), sample, source)
        work = _mark(work, "sampled_out", lambda alive: ~taken)
    if "english_context" in notes:
        work = work.with_columns(meta=_with_verdicts(work))
    kept = work.filter(pl.col("drop_reason").is_null()).select(
        "id", "source", pl.col("clean").alias("messages"), "meta").cast(io.SCHEMA)
    rejected = work.filter(pl.col("drop_reason").is_not_null()).select(
        "id", "source", pl.col("raw").alias("messages"), "meta", "drop_reason").cast(io.REJECTED_SCHEMA)
    counts = dict(rejected["drop_reason"].value_counts().iter_rows())
    names = reasons(cfg, decontaminate=bool(eval_questions)) + (["sampled_out"] if sample else [])
    notes["filters"] = names
    return Cleaned(kept, rejected, {reason: counts.get(reason, 0) for reason in names}, notes)

