"""Benchmark of the cleaning stage: 100,000 synthetic alpaca-like Chinese rows, read + clean + near-dedup.

    python bench/data/clean.py [--rows 100000] [--repeats 3] [--batch-rows 50000]

Prints JSON {rows, seconds_median, rows_per_s, peak_rss_mb, dropped, duplicates, ...} and writes it
to bench/results/clean.json. Target on a 2-core machine: under 10 s and under 2 GB for 100K rows.

The rows are built from a few hundred Chinese phrases combined at random (plus numbers, so unrelated
rows really differ), with ~10% exact duplicates, ~5% planted near duplicates, some English-context
questions, some mojibake, some empty or too-short answers, some HTML entities, and ~1% prompts that
contain one of 2,000 synthetic evaluation questions, so that every filter has work, the near-dedup
LSH sees realistic candidate traffic and decontamination runs at its intended size.

Near duplicates are of the kinds machine translation and scraping produce, a quarter each:
`punctuation` (。 -> ！, ， -> half-width ",", a final mark added or removed: nothing else differs),
`edit` (two or three characters substituted, deleted or inserted in the answer or the prompt),
`spacing` (spaces inserted, Latin letters re-cased, plus one punctuation change) and `mixed`
(a punctuation change and one or two character edits). `duplicates` reports, per planted kind,
how many copies are left beside their original after cleaning, and `originals_dropped`: rows that
were not planted copies but were dropped as exact or near duplicates (false positives). The
reference for `near.left` is data-juicer's MinHash recipe (5-gram, 256 permutations, Jaccard 0.7),
which leaves 41 of 5,000 such near duplicates.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from culturalign import io  # noqa: E402
from culturalign.data.shards import clean_in_one_job  # noqa: E402

SUBJECTS = ("长城 故宫 黄河 长江 泰山 西湖 敦煌 兵马俑 苏州园林 丝绸之路 京剧 昆曲 书法 国画 茶道 中医 针灸 太极拳 "
            "春节 端午节 中秋节 清明节 元宵节 重阳节 二十四节气 剪纸 刺绣 瓷器 青铜器 汉字 唐诗 宋词 元曲 四大名著 "
            "孔子 孟子 老子 庄子 李白 杜甫 苏轼 王羲之 郑和 张骞 诸葛亮 秦始皇 汉武帝 唐太宗 宋朝 明朝 清朝 "
            "火锅 饺子 粽子 月饼 豆腐 普洱茶 龙井茶 熊猫 高铁 移动支付 乡村振兴 城市化 人工智能 新能源汽车 "
            "垃圾分类 碳中和 古籍保护 非物质文化遗产 农历 生肖 风水 对联 灯笼 舞龙 舞狮 庙会").split()
ASKS = ("请介绍一下{}的历史。", "{}有什么文化意义？", "为什么说{}很重要？", "请简要说明{}的特点。",
        "{}和{}有什么区别？", "如何向外国朋友解释{}？", "请写一段关于{}的短文。", "{}对现代生活有什么影响？",
        "请列举三个与{}有关的事实。", "用通俗的语言解释{}。", "{}起源于哪个朝代？", "请评价{}的发展前景。",
        "学生应该怎样学习{}？", "{}在{}中扮演了什么角色？", "请比较{}与{}的异同。", "写一首关于{}的小诗。")
PHRASES = ("它具有悠久的历史", "体现了中华民族的智慧", "在民间广泛流传", "受到人们的喜爱", "经历了漫长的演变",
           "反映了当时的社会风貌", "蕴含着深厚的哲学思想", "对后世产生了深远影响", "是重要的文化符号",
           "在海外也有很大影响", "需要我们认真保护", "与日常生活密切相关", "有着独特的艺术价值", "被列入保护名录",
           "吸引了大量游客", "推动了经济的发展", "促进了文化交流", "形成了独特的风格", "表达了美好的愿望",
           "人们通常会在这一天团聚", "它的制作工艺十分复杂", "许多学者对此进行了研究", "相关的传说有很多版本",
           "现代科技让它焕发新的活力", "年轻人对它的兴趣越来越浓", "各地的习俗略有不同", "它象征着团结和和谐",
           "古人用它来记录时间", "它的名字来源于一个故事", "这种做法一直延续到今天", "政府出台了相应的政策",
           "学校也开设了相关课程", "它在文学作品中经常出现", "它的规模在当时首屈一指", "修建过程耗费了大量人力",
           "它见证了王朝的兴衰", "它融合了南北方的特色", "它讲究色香味俱全", "人们相信它能带来好运",
           "它的原料主要产自南方", "它需要经过多道工序", "它在节日里尤其受欢迎", "它是家庭聚会的必备",
           "它体现了人与自然的和谐", "它强调内外兼修", "它注重身心平衡", "它的理论基础是阴阳五行",
           "它在国际上获得了认可", "它的传承面临一些挑战", "越来越多的人开始关注它", "它的价值值得重新认识",
           "专家建议从小培养兴趣", "它可以帮助人们放松心情", "它的表现形式丰富多样", "它的代表作品广为人知",
           "它在不同地区有不同叫法", "它的发展离不开一代代人的努力", "它为研究历史提供了珍贵资料",
           "它让人感受到传统的魅力", "它与现代设计相结合", "它出现在许多影视作品中", "它的技艺需要多年练习",
           "它的用途随着时代而变化", "它代表了一个时代的最高水平", "它的遗址至今保存完好",
           "首先要了解它的基本概念", "其次要掌握它的主要方法", "最后要在实践中不断总结", "总的来说它值得深入学习",
           "这一点常常被人们忽视", "不同的观点之间存在争论", "可以从多个角度来理解", "它的核心在于以人为本",
           "这需要政府和社会共同努力", "普通人也可以参与其中", "数据表明这一趋势仍在继续", "未来还有很大的发展空间")
ENGLISH_CONTEXT = ("请把这句话翻译成英文：{}很美。", "“{}”这个英文单词怎么拼写？", "请找出与 cat 押韵的英语单词。",
                   "美国感恩节的火鸡应该怎么烤？", "解释英语中现在完成时的用法。")
MOJIBAKE = "锟斤拷烫烫烫"


def _answer(rng: random.Random) -> str:
    parts = rng.sample(PHRASES, rng.randint(8, 24))  # ~200 characters a row, like alpaca_zh
    parts.insert(rng.randrange(len(parts)), f"据统计约有{rng.randint(2, 9999)}万人参与")
    return "，".join(parts) + "。"


def _edit(text: str, rng: random.Random, edits: tuple[int, int] = (2, 3)) -> str:
    """A few single-character edits (substitute, delete, insert) at random places."""
    chars = list(text)
    if len(chars) < 10:  # the empty/short dirty rows: nothing to edit, stay an exact duplicate
        return text
    for _ in range(rng.randint(*edits)):
        pos = rng.randrange(len(chars))
        op = rng.randrange(3)
        if op == 0:
            chars[pos] = rng.choice("的了是在和有")
        elif op == 1 and len(chars) > 10:
            del chars[pos]
        else:
            chars.insert(pos, rng.choice("也都还就"))
    return "".join(chars)


def _punctuate(text: str, rng: random.Random) -> str:
    """One punctuation-only change: a mark swapped for another or its half-width form, or a final
    mark added or removed."""
    marks = [i for i, c in enumerate(text) if c in PUNCT_SWAP]
    op = rng.randrange(3)
    if op == 0 and marks:
        i = rng.choice(marks)
        return text[:i] + rng.choice(PUNCT_SWAP[text[i]]) + text[i + 1:]
    if op == 1 and text and text[-1] in PUNCT_SWAP:
        return text[:-1]
    return text + rng.choice("。！!.")


def _space(text: str, rng: random.Random) -> str:
    """Spaces inserted at two places and Latin letters re-cased."""
    for _ in range(2):
        i = rng.randrange(len(text) + 1)
        text = text[:i] + " " + text[i:]
    return text.swapcase() if rng.random() < 0.5 else text


PUNCT_SWAP = {"。": "！.!", "，": ",、", "？": "?。", "！": "。!", "：": ":，", "、": "，,"}
NEAR_KINDS = ("punctuation", "edit", "spacing", "mixed")


def _near(row: dict, kind: str, rng: random.Random) -> dict:
    """A near duplicate of `row` of the given kind (module doc)."""
    field = "output" if rng.random() < 0.8 or len(row["instruction"]) < 10 else "instruction"
    text = row[field]
    if kind == "punctuation":
        text = _punctuate(text, rng)
        if rng.random() < 0.5:
            return {**row, field: text, "instruction": _punctuate(row["instruction"], rng)} \
                if field == "output" else {**row, field: text}
    elif kind == "edit":
        text = _edit(text, rng)
    elif kind == "spacing":
        text = _punctuate(_space(text, rng), rng)
    else:
        text = _edit(_punctuate(text, rng), rng, (1, 2))
    return {**row, field: text}


def eval_questions(n: int, seed: int = 1) -> list[str]:
    """n evaluation-style questions (~30 characters) from the same phrase pools."""
    rng = random.Random(seed)
    return [f"关于{rng.choice(SUBJECTS)}，为什么说{rng.choice(PHRASES)}？{rng.choice(PHRASES)}吗？第{i}题"
            for i in range(n)]


def synthetic_rows(n: int, seed: int = 0, questions: list[str] = ()) -> tuple[list[dict], list[tuple[int, str]]]:
    """(n alpaca records {instruction, input, output} with the dirt of the module doc, and per record
    its planted origin: (index of the original it copies, kind) or (own index, "original"))."""
    rng = random.Random(seed)
    rows: list[dict] = []
    origin: list[tuple[int, str]] = []
    for i in range(n):
        roll = rng.random()
        if rows and roll < 0.15:
            base = rng.randrange(len(rows))
            kind = "exact" if roll < 0.10 else NEAR_KINDS[int((roll - 0.10) / 0.0125)]
            rows.append(dict(rows[base]) if kind == "exact" else _near(rows[base], kind, rng))
            origin.append((origin[base][0], kind))
            continue
        ask = rng.choice(ASKS)
        instruction = ask.format(*rng.sample(SUBJECTS, ask.count("{}")))
        output = _answer(rng)
        if roll < 0.17:
            instruction = rng.choice(ENGLISH_CONTEXT).format(rng.choice(SUBJECTS))
        elif roll < 0.18:
            output = output[:10] + MOJIBAKE + output[10:]
        elif roll < 0.19:
            output = rng.choice(("", "好", "  "))
        elif roll < 0.20 and questions:
            instruction = "请回答下面的问题：" + rng.choice(questions)
        elif roll < 0.21:
            instruction += "例如 &lt;b&gt;&quot;粗体&quot;&lt;/b&gt; 标签。"
        context = f"{rng.choice(SUBJECTS)}：{rng.choice(PHRASES)}。" if rng.random() < 0.3 else ""
        rows.append({"instruction": instruction, "input": context, "output": output})
        origin.append((i, "original"))
    return rows, origin


def duplicate_recall(ids: list[str], origin: list[tuple[int, str]], rejected: pl.DataFrame) -> dict:
    """Per planted kind: {planted, left} where `left` counts copies kept beside an earlier kept member
    of their group; `originals_dropped`: non-copies dropped as exact or near duplicates."""
    reason = dict(rejected.select("id", "drop_reason").iter_rows())
    result = {kind: {"planted": 0, "left": 0} for kind in ("exact", *NEAR_KINDS)}
    seen_kept: set[int] = set()
    originals_dropped = 0
    for row_id, (root, kind) in zip(ids, origin):
        why = reason.get(row_id)
        if kind == "original":
            originals_dropped += why in ("exact_duplicate", "near_duplicate")
        else:
            result[kind]["planted"] += 1
            result[kind]["left"] += why is None and root in seen_kept
        if why is None:
            seen_kept.add(root)
    near = {"planted": sum(result[k]["planted"] for k in NEAR_KINDS), "left": sum(result[k]["left"] for k in NEAR_KINDS)}
    return {**result, "near": near, "originals_dropped": originals_dropped,
            "reference_near_left_per_5000": DATA_JUICER_LEFT}


DATA_JUICER_LEFT = 41  # data-juicer MinHash (5-gram, 256 permutations, Jaccard 0.7) on 5,000 near duplicates


def publish(result: dict, out: str | Path) -> None:
    """Print a benchmark's figures and write them as JSON to `out` (bench/results/...): every data bench ends so."""
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results" / "clean.json"))
    args = parser.parse_args()

    questions = eval_questions(2000)
    records, origin = synthetic_rows(args.rows, questions=questions)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_alpaca.json"
        path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        clean, rejected_path = Path(tmp) / "clean.parquet", Path(tmp) / "rejected.parquet"
        times, cpu_times = [], []
        for _ in range(args.repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            # The rule's own path: read, clean in batches, global dedup, write (culturalign/data/shards.py).
            stats = clean_in_one_job(str(path), "bench", "alpaca", {}, str(clean), str(rejected_path),
                                     eval_questions=questions, batch_rows=args.batch_rows)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        rejected = pl.read_parquet(rejected_path, columns=["id", "drop_reason"])
    seconds = statistics.median(times)
    result = {
        "rows": args.rows,
        "eval_questions": len(questions),
        "seconds_median": round(seconds, 2),
        "batch_rows": args.batch_rows,
        # CPU seconds of all threads: steadier than wall time on a machine shared with other jobs.
        "cpu_seconds_median": round(statistics.median(cpu_times), 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "rows_per_s": round(args.rows / seconds),
        # ru_maxrss is in KiB on Linux: the peak of the whole process, the synthetic data included.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rows_kept": stats["rows_kept"],
        "dropped": stats["dropped"],
        "normalized": stats["normalized"],
        "duplicates": duplicate_recall([io.row_id("bench", i) for i in range(args.rows)], origin, rejected),
    }
    publish(result, args.out)


if __name__ == "__main__":
    main()
