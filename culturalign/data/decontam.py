"""Decontamination: training prompts that overlap an evaluation question are dropped.

Overlap is measured on character n-grams (default 8) after a canonical form on both sides (NFKC,
lower case, no whitespace), so a question pasted with other spacing or full-width letters still
matches. A training prompt P is contaminated by an evaluation question Q when

* share of Q's n-grams found in P >= threshold: the question (most of it) is inside the prompt,
  whatever else the prompt adds around it; or
* P is shorter than Q and share of P's n-grams found in Q >= threshold: the prompt is a large part
  of the question (e.g. the question's passage without its final ask). This reverse test needs at
  least `ngram` n-grams in P (a prompt of 2*ngram-1 characters or more), so a short generic prompt
  such as "请介绍一下长城的历史" is not dropped because some long question happens to contain it.

Questions shorter than `ngram` characters have no n-gram: they contaminate a prompt only when the
prompt is exactly the question (in canonical form; e.g. HalluQA's "你是哪国人？"). n-grams shared by
many questions (more than max(10, 1%) of them) are template text, e.g. "以下哪个选项是正确的" in every
multiple-choice item; they are left out of both counts, so templates alone never contaminate.

The matching is a hash join (polars) of the prompts' n-grams against the questions' n-grams, then a
count per (prompt, question): linear in the total text, fast for 100K prompts x thousands of questions.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from culturalign.data.dedup import ngram_hashes

TEMPLATE_SHARE = 0.01
TEMPLATE_MIN = 10
PROMPT_CHUNK = 1 << 15  # prompts matched per step: bounds the n-gram tables of long multi-turn prompts


def canonical(texts: Sequence[str]) -> list[str]:
    """The form both sides are compared in: NFKC, lower case, whitespace removed."""
    series = pl.Series(list(texts), dtype=pl.String).fill_null("")
    return series.str.normalize("NFKC").str.to_lowercase().str.replace_all(r"\s+", "").to_list()


def _question_grams(questions: list[str], ngram: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(h, q) n-grams of the (canonical) questions without templates, |n-grams| per question, the
    template hashes."""
    hashes, index = ngram_hashes(questions, ngram)
    grams = pl.DataFrame({"h": hashes, "q": index}).unique()
    is_template = pl.len().over("h") > max(TEMPLATE_MIN, int(TEMPLATE_SHARE * len(questions)))
    templates = grams.filter(is_template).select("h").unique()
    grams = grams.filter(~is_template)
    return grams, grams.group_by("q").agg(q_size=pl.len()), templates


def contaminated(prompts: Sequence[str], eval_questions: Sequence[str], ngram: int = 8,
                 threshold: float = 0.5) -> np.ndarray:
    """Boolean mask over `prompts`: True where the prompt overlaps some evaluation question (see module doc)."""
    mask = np.zeros(len(prompts), dtype=bool)
    if not len(prompts) or not len(eval_questions):
        return mask
    canon_questions = canonical(eval_questions)
    short = {q for q in canon_questions if 0 < len(q) < ngram}
    questions, q_size, templates = _question_grams(canon_questions, ngram)
    for start in range(0, len(prompts), PROMPT_CHUNK):
        chunk = canonical(prompts[start:start + PROMPT_CHUNK])
        mask[start:start + len(chunk)] = [p in short for p in chunk]
        hashes, index = ngram_hashes(chunk, ngram)
        grams = pl.DataFrame({"h": hashes, "p": index})
        hits = grams.join(questions, on="h").unique().group_by("p", "q").agg(hits=pl.len())
        if hits.is_empty():
            continue
        p_size = (grams.filter(pl.col("p").is_in(hits["p"].unique().implode()))
                  .join(templates, on="h", how="anti")
                  .group_by("p").agg(p_size=pl.col("h").n_unique()))
        found = (hits.join(q_size, on="q").join(p_size, on="p")
                 .filter((pl.col("hits") >= threshold * pl.col("q_size"))
                         | ((pl.col("p_size") < pl.col("q_size")) & (pl.col("p_size") >= ngram)
                            & (pl.col("hits") >= threshold * pl.col("p_size")))))
        mask[start + found["p"].unique().to_numpy()] = True
    return mask
