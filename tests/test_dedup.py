"""Near-duplicate detection (culturalign.data.dedup) and decontamination (culturalign.data.decontam)."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from culturalign.data import dedup
from culturalign.data.decontam import contaminated
from culturalign.data.dedup import estimated_jaccard, lsh_params, near_duplicates, ngram_hashes, signatures

GREAT_WALL = ("长城是中国古代修建的大规模军事防御工程，东起河北山海关，西至甘肃嘉峪关，全长两万一千多公里。"
              "它始建于春秋战国时期，秦朝统一后将各国长城连接起来，明朝又进行了大规模的修缮和重建。")
FORBIDDEN_CITY = ("故宫又称紫禁城，是明清两代的皇家宫殿，位于北京中轴线的中心，始建于明朝永乐四年。"
                  "它占地约七十二万平方米，有大小宫殿七十多座，是世界上现存规模最大的木质结构古建筑群之一。")
LONG = GREAT_WALL + FORBIDDEN_CITY  # one edit changes at most 5 of its ~176 5-grams: Jaccard ~0.94


def shingles(text: str, n: int) -> set[str]:
    return {text[i:i + n] for i in range(len(text) - n + 1)}


def jaccard(a: str, b: str, n: int = 5) -> float:
    sa, sb = shingles(a, n), shingles(b, n)
    return len(sa & sb) / len(sa | sb)


def edit(text: str, edits: int, seed: int) -> str:
    rng, chars = random.Random(seed), list(text)
    for _ in range(edits):
        chars[rng.randrange(len(chars))] = "某"
    return "".join(chars)


def test_ngram_hashes_match_the_ngrams():
    texts = ["abcdef", "ab", "", "abcde", "xyzxyz"]
    hashes, docs = ngram_hashes(texts, 3)
    grams = [(i, t[j:j + 3]) for i, t in enumerate(texts) for j in range(len(t) - 2)]
    assert docs.tolist() == [i for i, _ in grams]
    by_gram: dict[str, set[int]] = {}
    for (_, gram), value in zip(grams, hashes.tolist()):
        by_gram.setdefault(gram, set()).add(value)
    assert all(len(v) == 1 for v in by_gram.values())           # equal n-grams, equal hashes
    assert len(set(hashes.tolist())) == len(by_gram) == 7       # different n-grams, different hashes
    assert not np.array_equal(ngram_hashes(texts, 3, seed=5)[0], hashes)


def test_estimated_jaccard_tracks_the_true_value():
    pairs = [(GREAT_WALL, edit(GREAT_WALL, k, k)) for k in (1, 3, 6, 12)] + [(GREAT_WALL, FORBIDDEN_CITY)]
    for a, b in pairs:
        assert estimated_jaccard(a, b) == pytest.approx(jaccard(a, b), abs=0.12)
    assert estimated_jaccard(GREAT_WALL, GREAT_WALL) == 1.0


def test_signatures_are_deterministic_and_seeded(monkeypatch):
    texts = [GREAT_WALL, FORBIDDEN_CITY, "短"]
    first = signatures(texts, ngram=5, num_perm=64, seed=1)
    monkeypatch.setattr(dedup, "_TEXT_CHUNK", 2)  # hashed in chunks: the same rows
    assert np.array_equal(first, signatures(texts, ngram=5, num_perm=64, seed=1))
    assert first.shape == (3, 64)
    assert np.array_equal(first, signatures(texts, ngram=5, num_perm=64, seed=1))
    assert not np.array_equal(first, signatures(texts, ngram=5, num_perm=64, seed=2))
    assert (first[2] == np.iinfo(np.uint64).max).all()  # shorter than the n-gram: no signature


def test_near_duplicates_catch_an_edited_copy_but_not_a_different_text():
    edited = edit(LONG, 1, 0)
    assert jaccard(LONG, edited) > 0.92
    texts = [LONG, FORBIDDEN_CITY, edited, GREAT_WALL, edit(FORBIDDEN_CITY, 30, 1), "短", "短"]
    assert near_duplicates(texts).tolist() == [False, False, True, False, False, False, False]


def test_near_duplicates_keep_the_first_of_a_cluster():
    one = edit(LONG, 1, 1)
    two = edit(one, 1, 2)
    assert near_duplicates([two, FORBIDDEN_CITY, LONG, one]).tolist() == [False, False, True, True]


def test_near_duplicates_at_scale_find_planted_copies():
    rng = random.Random(0)
    phrases = [GREAT_WALL[i:i + 6] for i in range(0, len(GREAT_WALL) - 6, 3)] + \
              [FORBIDDEN_CITY[i:i + 6] for i in range(0, len(FORBIDDEN_CITY) - 6, 3)]
    texts = ["".join(rng.sample(phrases, 25)) + str(i) for i in range(2000)]  # ~150 characters
    copies = {i: edit(texts[i], 1, i) for i in range(0, 2000, 100)}
    flags = near_duplicates(texts + list(copies.values()))
    assert flags[:2000].sum() <= 2  # unrelated random texts: (almost) never
    assert flags[2000:].all()


def test_lsh_params():
    assert lsh_params(0.85, 128) == (12, 9)
    bands, rows = lsh_params(0.5, 64)
    assert bands * rows <= 64 and 1 - (1 - 0.5**rows) ** bands >= 0.95


# --- decontamination ------------------------------------------------------------------------------

def test_contaminated_question_inside_a_prompt():
    question = "在历史上，诸葛亮草船借箭发生在哪一年？"
    prompts = ["请回答下面的问题：\n" + question + "\n请给出理由。",  # pasted
               "在 历史上，诸葛亮草船借箭发生在哪一年?",              # other spacing and punctuation width
               "诸葛亮草船借箭的故事出自哪本书？",                   # same topic, different question
               "草船借箭",                                       # shorter than the n-gram
               ""]
    assert contaminated(prompts, [question], ngram=8, threshold=0.5).tolist() == [True, True, False, False, False]


def test_contaminated_short_questions_only_by_equality():
    questions = ["你是哪国人？", "辣是味觉吗"]  # shorter than 8 characters: no n-gram
    prompts = ["你是哪国人?", "辣 是味觉吗", "你是哪国人？请详细说明。", "辣"]
    assert contaminated(prompts, questions, ngram=8, threshold=0.5).tolist() == [True, True, False, False]


def test_contaminated_reverse_for_prompts_that_are_most_of_a_question():
    question = "阅读下面的材料：长城是中国古代修建的大规模军事防御工程，东起河北山海关，西至甘肃嘉峪关。请问长城的东端在哪里？"
    part = "长城是中国古代修建的大规模军事防御工程，东起河北山海关，西至甘肃嘉峪关。"
    generic = "请问长城的东端在哪里？"  # fewer than `ngram` n-grams: never contaminated by the reverse test
    assert contaminated([part, generic], [question], ngram=8, threshold=0.5).tolist() == [True, False]


def test_template_ngrams_do_not_contaminate():
    template = "以下哪个选项是正确的？"
    questions = [f"{template}A. 选项{i} B. 其他{i}" for i in range(30)]
    assert contaminated([template + "请说明理由。"], questions, ngram=8, threshold=0.5).tolist() == [False]
    assert contaminated([questions[3]], questions, ngram=8, threshold=0.5).tolist() == [True]


def test_contaminated_empty_inputs():
    assert contaminated([], ["问题"], 8, 0.5).tolist() == []
    assert contaminated(["问题"], [], 8, 0.5).tolist() == [False]


def test_halluqa_question_pasted_into_a_training_prompt(shared_data):
    records = json.loads((shared_data / "halluqa" / "HalluQA.json").read_text(encoding="utf-8"))
    questions = [r["Question"] for r in records if r.get("Question")]
    pasted = questions[100]
    prompts = [f"请认真回答：{pasted}", "请介绍一下中国古代四大发明。", pasted, "写一首关于春天的诗。"]
    assert contaminated(prompts, questions, ngram=8, threshold=0.5).tolist() == [True, False, True, False]


def test_no_candidate_pairs_at_all():
    """Unrelated texts: no band shared, no pair, nobody a duplicate (the empty case of every step)."""
    from culturalign.data.dedup import unique_pairs
    assert unique_pairs([np.empty((0, 2), np.int64)], 5).shape == (0, 2)
    assert near_duplicates(["春眠不觉晓处处闻啼鸟", "白日依山尽黄河入海流"]).tolist() == [False, False]
