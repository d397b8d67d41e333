"""The data stage's row judgements (issue 25): English-bound tasks by what they ask, translated code in any
language, the answer checks, and the judge's second opinion against the real local OpenAI-compatible server.

The cases are written by hand, one or more per task family of the original English alpaca set (not the
issue's example strings only), each with look-alikes that must stay; expected reasons are written by hand.
The figures on real labelled material are in bench/data/filters.py and the last test here.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from culturalign import io
from culturalign.data import answers
from culturalign.data.clean import clean_frame
from culturalign.data.review import review_sheet

ROOT = Path(__file__).resolve().parents[1]
LONG = "这是一个足够长而且完整的回答，说明了问题的各个方面。"
# Only the filters under test: every other one off, so a reason is the one these rules give.
BASE = {"html_entities": False, "mojibake": False, "length": {"enabled": False}, "cjk": {"enabled": False},
        "exact_dedup": False, "near_dedup": {"enabled": False}, "decontaminate": {"enabled": False}}


def frame(pairs: list[tuple[str, str]]) -> pl.DataFrame:
    return io.frame([{"id": f"r{i}", "source": "t", "meta": "{}",
                      "messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}]}
                     for i, (p, a) in enumerate(pairs)])


def reasons(pairs: list[tuple[str, str]], cfg: dict | None = None) -> list[str | None]:
    kept, rejected, _, _ = clean_frame(frame(pairs), {**BASE, **(cfg or {})})
    why = dict(rejected.select("id", "drop_reason").iter_rows())
    return [why.get(f"r{i}") for i in range(len(pairs))]


# --- English-bound tasks -----------------------------------------------------------------------------
ENGLISH_BOUND = [
    ("找出下面句子中的所有形容词：那只敏捷的狐狸跳过了懒狗。", "敏捷的、懒"),                  # parts of speech
    ("判断以下句子中的主语和宾语：老师表扬了学生。", "主语：老师；宾语：学生。"),
    ("“跑”的名词形式是什么？", "跑步。"),                                                   # word forms
    ("写出“好”的比较级和最高级。", "更好，最好。"),
    ("把下面的句子改成过去时：我每天去公园散步。", "我每天去了公园散步。"),                    # tenses, voice
    ("将这个句子改为被动语态：猫抓住了老鼠。", "老鼠被猫抓住了。"),
    ("纠正下面句子中的语法错误：她不喜欢吃苹果。", "她不喜欢吃苹果。"),                        # correction lost
    ("检查这段话的拼写并改正：我们明天去北京旅行。", "没有错误。"),
    ("将下面的句子全部转换为大写字母：今天天气很好。", "今天天气很好。"),                      # capitals
    ("计算这句话中有多少个单词：我喜欢在周末读书。", "5个单词。"),                              # word counts
    ("按字母顺序排列这些水果：香蕉、苹果、橙子。", "苹果、橙子、香蕉。"),                        # alphabet
    ("用凯撒密码把“明天见”加密，位移为3。", "明天见"),                                          # ciphers
    ("请用摩尔斯电码表示“你好”。", "你好"),
    ("把这句话翻译成 pig latin：我爱学习。", "我爱学习"),
    ("“花”这个词有几个音节？", "一个音节。"),                                                  # phonetics
    ("找出这首诗中使用了头韵的诗句。", "清风徐来。"),
    ("解释这个句子里的双关语：他对钢琴很有键解。", "键与见谐音。"),                             # puns
    ("解释习语“break the ice”的意思。", "打破僵局。"),                                        # idioms
    ("从英语翻译成西班牙语：今天是星期一。", "今天是星期一。"),                                  # other target
    ("请将这句话译成日语：我喜欢吃寿司。", "我喜欢吃寿司。"),
    ("将以下英文句子翻译成中文：我今天很忙。", "我今天很忙。"),                                  # void source
    ("这句话有几个名词：小猫在花园里追蝴蝶。", "三个：小猫、花园、蝴蝶。"),
    ("写出三个以 -ing 结尾的词。", "跑步、唱歌、跳舞。"),                                       # suffixes
    ("写一首AABBA韵式的五行打油诗。", "小猫爱吃鱼。"),                                          # verse forms
    ("把这句话改写得更礼貌：give me the book right now.", "请把书给我。"),                       # English sentence
]
STAYS = [
    ("将“我爱你”翻译成英文。", "I love you."),                                               # into English
    ("把这句话翻译成英语：长城是中国的象征。", "The Great Wall is a symbol of China."),
    ("从英语翻译成法语：Nice to meet you.", "Enchanté de faire votre connaissance."),          # French answer
    ("翻译成日语：谢谢", "ありがとうございます。"),
    ("用合适的词填空：春天来了，花儿都<mask>了。", "开"),                                       # <mask>
    ("写一首押韵的五言绝句，描写秋天。", "秋风扫落叶，明月照高楼。"),                          # Chinese rhyme
    ("列出五个描述春天的形容词。", "温暖、明媚、生机勃勃、清新、柔和。"),                      # Chinese words
    ("“高兴”的近义词有哪些？", "快乐、开心、愉快。"),
    ("美国的首都是哪里？", "华盛顿特区。"),                                                  # foreign facts
    ("把金额1234元写成中文大写。", "壹仟贰佰叁拾肆元整。"),                                   # Chinese capitals
    ("用Python实现凯撒密码的加密函数。", "def caesar(text, k):\n    return text"),            # code on ciphers
    ("想出一个关于猫的双关语。", "猫咪很“喵”妙。"),                                          # writing a pun
    ("分析这首诗的修辞手法：床前明月光，疑是地上霜。", "比喻。"),
    ("推荐一部像 The Shawshank Redemption 这样的电影。", "《阿甘正传》。"),                     # English titles
    ("给下面的句子加上标点：我们明天去公园吧", "我们明天去公园吧。"),                            # Chinese punctuation
]


def by_prompt(pairs: list[tuple[str, str]], cfg: dict | None = None) -> dict[str, str | None]:
    """{prompt or answer: reason}; one clean_frame call for a whole list (the rules compile once)."""
    return {max(p, a, key=len): why for (p, a), why in zip(pairs, reasons(pairs, cfg))}


def test_english_bound_tasks_are_dropped_by_what_they_ask():
    no_answer_checks = {"answers": {name: False for name in answers.CHECKS}}
    assert by_prompt(ENGLISH_BOUND, no_answer_checks) == {max(p, a, key=len): "english_context" for p, a in ENGLISH_BOUND}


def test_chinese_valid_look_alikes_stay():
    assert by_prompt(STAYS) == {max(p, a, key=len): None for p, a in STAYS}


# --- translated code ------------------------------------------------------------------------------------
TRANSLATED = [
    "选择 姓名, 年龄 从 员工 其中 年龄 > 30;",                                                  # SQL
    "SELECT name FROM users 其中 age > 18;",
    "UPDATE orders 设置 status = 'done' WHERE id = 3;",
    "公共 静态 无效 main(String[] args) {",                                                     # Java
    "整数 计数 = 0;\nfor (int i = 0; i < 10; i++) { 计数 += i; }",
    "按钮.addEventListener('点击', function() { alert('hi'); });",                             # JavaScript
    "常量 价格 = 100;",
    "<段落>欢迎来到我的网站</段落>",                                                          # HTML
    "<div 类=\"header\">标题</div>",
    ".box { 颜色: 蓝色; 宽度: 100px; }",                                                       # CSS
    "光盘 /usr/local/bin",                                                                    # shell
    "pip 安装 requests",
    "对于 i 在 range(5):\n    打印(i)",                                                       # Python
    "def greet(name)：\n    print（\"你好\" + name）",                                          # full-width syntax
    "{\"active\": 真, \"count\": 3}",                                                          # JSON
    "name = 输入(\"请输入名字：\")\n打印(\"你好，\" + name)",                                      # Python with strings
    "for i in 范围(10):\n    print(i)",
    "窗口.警报(\"欢迎\");",                                                                    # JavaScript
    "SELECT 计数(*) FROM orders;",                                                             # SQL
    "<按钮 type=\"submit\">提交</按钮>",                                                         # HTML
]
INTACT = [
    "SELECT name, age FROM employees WHERE age > 30; -- 查询30岁以上的员工",
    "public static void main(String[] args) {\n    System.out.println(\"你好，世界\");\n}",
    "button.addEventListener('click', () => alert('点击了按钮'));",
    "<p class=\"intro\">欢迎来到我的网站（测试版）</p>",
    "h1 { font-family: 微软雅黑; color: red; }",
    "for i in range(5):\n    print(f\"第{i}次：你好，世界\")  # 打印五次",
    "{\"姓名\": \"张三\", \"年龄\": 25}",
    "从客户名单中选择一位幸运者，送出礼品。",
    "如果明天下雨，我们就不去公园了，否则就去。",
    "让 x = 2，则 2x + 1 = 5。",                                                              # translated maths
    "猫 Tom 跳上了桌子。",
    "wifi（无线网络）",
    "请在<姓名>处填写你的名字。",
    "长度(m)与时间(s)的关系如下。",
]


def test_translated_code_in_any_language_is_dropped():
    assert by_prompt([("请看下面的代码：", c) for c in TRANSLATED]) == {c: "translated_code" for c in TRANSLATED}


def test_intact_code_and_prose_stay():
    assert by_prompt([("请写一段示例。", c) for c in INTACT]) == {c: None for c in INTACT}


# --- the CJK share ------------------------------------------------------------------------------------------
CJK_ONLY = {"cjk": {"enabled": True, "min_share": 0.3}}


def test_low_cjk_share_keeps_chinese_tasks_with_english_material_or_code_answers():
    assert reasons([
        ("找出以下物品的总价：\niPad Pro 11-inch - $849\nApple Pencil - $129\nSmart Keyboard Folio - $179",
         "三件物品的总价是 $1,157。"),                                       # English input, Chinese answer
        ("写一个Python函数，计算两个数的和。", "def add(a, b):\n    return a + b"),   # an unfenced code answer
        ("一元二次方程的求根公式是什么？", "x = (-b ± sqrt(b^2 - 4ac)) / (2a)"),       # a formula
        ("给我的咖啡店起一个英文名字。", "Bean There Cafe"),                         # English asked for
        ("安排明天上午10点的会议。", "Certainly, I will schedule a meeting for you tomorrow at 10 AM. "
         "May I know the participants?"),                                         # English nobody asked for
        ("Write a short poem about the sea.", "The sea is wide and the waves are high, under a grey sky."),
    ], CJK_ONLY) == [None, None, None, None, "low_cjk_share", "low_cjk_share"]


# --- answer checks -------------------------------------------------------------------------------------------
BROKEN = [
    ("总结以下文章。", "这篇文章讲述了科技的发展。", "missing_content"),
    ("给这幅画写两个形容词。", "美丽、生动。", "missing_content"),
    ("请总结这个视频的内容：https://video.example.com/watch?v=42", "视频介绍了熊猫的生活。", "missing_content"),
    ("评价这本书的封面设计。", "很抱歉，您没有提供封面的图片，我无法评价。", "missing_content"),
    ("用一句话结束故事。", "最后他们幸福地生活在一起。", "missing_content"),
    ("总结给出的文章。", "这篇文章讲述了科技的发展。", "missing_content"),
    ("简单介绍一下长城。", "The Great Wall is a series of fortifications built across northern China over centuries.",
     "answer_language"),
    ("请把这句话翻译成英文：我喜欢喝茶。", "我喜欢喝茶。", "answer_language"),
    ("用50字以内介绍一下熊猫。", "熊猫" + "是一种非常可爱的动物，生活在中国的四川，" * 8, "answer_length"),
    ("用一句话概括春节。", "春节是中国最重要的节日。人们会回家团圆。大家吃饺子。孩子们收红包。", "answer_length"),
    ("列出三种常见的水果。", "1. 苹果\n2. 香蕉\n3. 橙子\n4. 葡萄\n5. 西瓜", "answer_count"),
    ("推荐一个适合周末的度假地。", "1. 杭州\n2. 苏州\n3. 厦门\n4. 三亚", "answer_count"),
    ("描述一下秋天。", "秋天很美丽。\n秋天很美丽。\n秋天很美丽。\n秋天很美丽。\n秋天很美丽。", "degenerate"),
    ("介绍一下故宫。", "故宫是明清两代的皇家宫殿，位于北京中轴线的中心，", "truncated"),
]
SOUND = [
    ("总结下面的文章：人工智能正在改变医疗。医生用它读片，效率提高了很多。", "人工智能提高了医疗效率。"),
    ("编写一个Python程序，获取 https://example.com 的网页标题。", "import requests\nprint(requests.get('https://example.com').text[:100])"),
    ("用50字以内介绍一下熊猫。", "熊猫是中国特有的珍稀动物，主要生活在四川，以竹子为食，性情温和，深受人们喜爱。"),
    ("列出三种常见的水果。", "1. 苹果\n2. 香蕉\n3. 橙子"),
    ("写一个关于学习的计划。", "1. 早上背单词\n2. 下午做练习\n3. 晚上复习\n4. 周末总结"),
    ("《静夜思》这首诗表达了什么情感？", "表达了诗人对故乡的思念之情。"),
    ("给定一个整数列表，写一个函数返回最大值。", "def top(xs):\n    return max(xs)"),
    ("介绍一下故宫。", "故宫是明清两代的皇家宫殿，位于北京中轴线的中心。"),
    ("给出一元二次方程的求根公式。", "x 等于负 b 加减根号下 b 的平方减 4ac，再除以 2a。"),   # 给出 asks, points at nothing
    ("提供一个保持健康的建议。", "每天坚持运动半小时，饮食均衡，保证充足睡眠。"),
]


def test_broken_answers_get_their_own_reason():
    assert by_prompt([(p, a) for p, a, _ in BROKEN]) == {max(p, a, key=len): why for p, a, why in BROKEN}


def test_sound_answers_stay():
    assert by_prompt(SOUND) == {max(p, a, key=len): None for p, a in SOUND}


def test_an_english_answer_stays_where_the_chinese_prompt_asks_for_english():
    english = "Spring is the season of renewal. Flowers bloom, birds return and the days grow longer and warmer."
    pairs = [("用英语写一段关于春天的短文。", english), ("写一段关于春天的短文。", english)]
    kept, rejected, _, _ = clean_frame(frame(pairs), {"near_dedup": {"enabled": False}})
    assert kept["id"].to_list() == ["r0"] and rejected["drop_reason"].to_list() == ["low_cjk_share"]


def test_stats_list_the_filters_that_ran_and_the_second_opinion_off():
    _, _, dropped, notes = clean_frame(frame([("总结以下文章。", LONG)]), BASE)
    assert notes["second_opinion"] == {"on": False}
    assert notes["filters"] == list(dropped) and dropped["missing_content"] == 1
    for name in ("english_context", "translated_code", *answers.CHECKS):
        assert name in notes["filters"]


# --- the judge's second opinion -------------------------------------------------------------------------
OPINION = {**BASE, "answers": {name: False for name in answers.CHECKS}, "second_opinion": {"judge": "gpt"}}
ROWS = [("“苹果”这个词在句子里起什么作用？", "作主语。"),         # a hint (words, sentences): asked, english_bound
        ("写一段代码打印你好：", "print(\"你好\")"),               # code next to Chinese: asked, sound (0.6)
        ("列出三个中国的城市。", "北京、上海、广州。"),             # a stated count: asked, malformed reply
        ("长城有多长？", "两万多公里。"),                           # nothing flagged: not asked
        ("用ROT13编码：你好", "你好")]                               # a rule drops it first: not asked
VERDICTS = {"苹果": '{"sound": false, "problem": "english_bound", "confidence": 0.9, "why": "英文词的句子成分"}',
            "代码": '好的：{"sound": true, "problem": null, "confidence": 0.6, "why": "可以"}',
            "城市": '{"sound": "maybe", "problem": null}'}


def judge_reply(body: dict) -> str:
    text = body["messages"][-1]["content"]
    return next(reply for key, reply in VERDICTS.items() if key in text)


@pytest.fixture
def judge(chat_server, monkeypatch) -> dict:
    monkeypatch.setenv("OPINION_KEY", "sk-opinion-test")
    return chat_server.judge_config("OPINION_KEY", max_retries=0)


def test_second_opinion_drops_counts_failures_and_a_rerun_is_cached(chat_server, judge, tmp_path):
    chat_server.set(reply=judge_reply)
    cache, usage = str(tmp_path / "cache.sqlite"), str(tmp_path / "usage.json")
    kept, rejected, dropped, notes = clean_frame(frame(ROWS), OPINION, opinion_judge=judge, llm_cache=cache,
                                                 opinion_usage=usage)
    assert chat_server.requests == 3
    assert dict(rejected.select("id", "drop_reason").iter_rows()) == {"r0": "judge_english_bound",
                                                                      "r4": "english_context"}
    assert dropped["judge_english_bound"] == 1 and dropped["judge_broken"] == 0
    assert notes["second_opinion"] == {"on": True, "ask": "flagged", "flagged": 3, "asked": 3, "failed": 1,
                                       "budget_skipped": 0, "skipped": 0,
                                       "dropped": {"judge_english_bound": 1, "judge_translated_code": 0,
                                                   "judge_broken": 0}}
    meta = {r["id"]: json.loads(r["meta"]) for r in kept.iter_rows(named=True)}
    assert meta["r1"]["second_opinion"]["confidence"] == 0.6 and meta["r2"]["second_opinion"]["failed"] is True
    assert "second_opinion" not in meta["r3"]   # the malformed verdict (r2) is kept, never dropped
    # The review sheet: no usable verdict first, then the least sure "sound", then the rest.
    assert review_sheet(kept, 3, seed=0, clean_cfg=OPINION)["id"].to_list() == ["r2", "r1", "r3"]

    chat_server.set(reply=judge_reply)
    again = clean_frame(frame(ROWS), OPINION, opinion_judge=judge, llm_cache=cache, opinion_usage=usage)
    assert chat_server.requests == 0   # every reply came from the cache, the malformed one included
    assert again.rejected.equals(rejected) and again.notes["second_opinion"]["failed"] == 1


def test_second_opinion_respects_the_budget_and_max_rows(chat_server, judge, tmp_path):
    chat_server.set(reply=lambda body: VERDICTS["苹果"], usage=(100, 50))
    priced = {**judge, "concurrency": 1, "budget_usd": 0.03, "price_per_1k": {"input": 0.1, "output": 0.2}}
    rows = frame([(f"“word{i}”这个词在句子里起什么作用？", "作主语。") for i in range(4)])
    _, rejected, _, notes = clean_frame(rows, OPINION, opinion_judge=priced, llm_cache=str(tmp_path / "c.sqlite"))
    assert chat_server.requests == 1 and notes["second_opinion"]["budget_skipped"] == 3
    assert rejected.height == 1   # rows the budget left unasked are kept, not dropped
    chat_server.set(reply=lambda body: VERDICTS["苹果"])
    capped = {**OPINION, "second_opinion": {"judge": "gpt", "max_rows": 2}}
    _, rejected, _, notes = clean_frame(rows, capped, opinion_judge=judge, llm_cache=str(tmp_path / "d.sqlite"))
    assert chat_server.requests == 2 and notes["second_opinion"]["skipped"] == 2 and rejected.height == 2


def test_second_opinion_needs_its_judge_config():
    with pytest.raises(ValueError, match="second_opinion.judge"):
        clean_frame(frame(ROWS), OPINION)


# --- real labelled material ------------------------------------------------------------------------------------
DATA = ROOT.parent / "shared" / "data" / "alpaca_zh_demo" / "alpaca_zh_demo.json"


@pytest.mark.skipif(not DATA.exists(), reason=f"real data absent: {DATA} (only present beside the project checkout)")
def test_figures_on_the_labelled_test_half(tmp_path):
    """Floors at the figures measured on the test half (README): a change that lowers them fails here."""
    out = tmp_path / "filters.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "data" / "filters.py"), "--data", str(DATA), "--out", str(out)],
                   check=True, capture_output=True, cwd=ROOT)
    test = json.loads(out.read_text())["test_half"]
    assert test["rows"] == 500
    assert test["filters"]["english_context"]["precision"] >= 0.75
    assert test["filters"]["english_context"]["recall"] >= 0.55
    assert test["filters"]["missing_content"]["precision"] >= 0.95
    assert test["filters"]["translated_code"]["recall"] == 1.0     # its one translated-code row
    assert test["kept_unfit_share"] <= 0.095
    assert test["sound_removed_share"] <= 0.04
