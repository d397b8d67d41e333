"""Cleaning filters (culturalign.data.clean) on inline samples: exact kept ids and drop reasons."""
from __future__ import annotations

import json

import polars as pl
import pytest

from culturalign.data import answers, formats
from culturalign import io
from culturalign.data.clean import DEFAULTS, clean_frame, load_rules, normalize_text, resolve

ANSWER = "长城是中国古代修建的军事防御工程，东起山海关，西至嘉峪关，绵延万余里。"
# Every filter off: a test switches on the one it is about.
ALL_OFF = {"html_entities": False, "normalize": False, "mojibake": False, "length": {"enabled": False}, "cjk": {"enabled": False},
           "english_context": {"enabled": False}, "translated_code": False, "exact_dedup": False,
           "near_dedup": {"enabled": False}, "answers": {name: False for name in answers.CHECKS},
           "decontaminate": {"enabled": False}}


def conv(i: int | str, prompt: str | None, answer: str | None = ANSWER, *, system: str | None = None) -> dict:
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    return {"id": f"r{i}", "source": "test", "messages": messages, "meta": json.dumps({"n": i})}


def run(rows: list[dict], cfg: dict, **kwargs) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    return clean_frame(io.frame(rows), cfg, **kwargs)


def outcome(rows: list[dict], cfg: dict, **kwargs) -> tuple[list[str], dict[str, str]]:
    kept, rejected, dropped, _ = run(rows, cfg, **kwargs)
    assert kept.height + rejected.height == len(rows)
    assert sum(dropped.values()) == rejected.height
    return kept["id"].to_list(), dict(rejected.select("id", "drop_reason").iter_rows())


def only(**switch) -> dict:
    return {**ALL_OFF, **switch}


def normalized(text: str) -> str:
    return pl.select(normalize_text(pl.lit(text))).item()


# --- normalisation --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("ＡＢＣ１２３", "ABC123"),                                  # full-width letters and digits -> ASCII
    ("你好，世界！真的？是：是；（注）～……", "你好，世界！真的？是：是；（注）～……"),  # Chinese punctuation kept
    ("他说：“好。”《论语》「子曰」、", "他说：“好。”《论语》「子曰」、"),
    ("ﬁ ㎏ Ⅳ", "fi kg IV"),                                     # compatibility characters
    ("中文\u3000\u3000空格", "中文 空格"),                         # ideographic spaces collapse to one
    ("a  \t b", "a b"),
    ("零\u200b宽\ufeff字\x00符\x07\u00ad", "零宽字符"),              # control and invisible characters
    ("一\r\n二\r三", "一\n二\n三"),
    ("段一\n\n\n\n段二   \n", "段一\n\n段二"),
    ("def f():\n    return 1", "def f():\n    return 1"),       # indentation survives
    ("  首尾空白  ", "首尾空白"),
])
def test_normalize_values(raw, expected):
    assert normalized(raw) == expected


def test_normalize_applies_to_every_turn_and_keeps_roles():
    kept, _, _, _ = run([conv(0, "Ｑ：你好  吗？", "很好，谢谢！\r\n", system="系统\u200b提示")], only(normalize=True))
    assert kept["messages"].to_list()[0] == [
        {"role": "system", "content": "系统提示"}, {"role": "user", "content": "Q：你好 吗？"},
        {"role": "assistant", "content": "很好，谢谢！"}]


def test_to_simplified_converts_traditional():
    kept, _, _, _ = run([conv(0, "請問長城有多長？", "萬里長城約兩萬公里。")], only(to_simplified=True))
    assert [m["content"] for m in kept["messages"][0]] == ["请问长城有多长？", "万里长城约两万公里。"]


def test_defaults_fill_missing_keys():
    cfg = resolve({"length": {"max_answer": 10}, "near_dedup": {"enabled": False}})
    assert cfg["length"] == {**DEFAULTS["length"], "max_answer": 10}
    assert cfg["near_dedup"]["threshold"] == DEFAULTS["near_dedup"]["threshold"]
    assert cfg["cjk"] == DEFAULTS["cjk"]


@pytest.mark.parametrize("raw, expected", [
    ("1 &lt; 2 &amp;&amp; 3 &gt; 2", "1 < 2 && 3 > 2"),
    ("他说&quot;你好&quot;，I&#39;m fine &#x27;ok&#x27;", "他说\"你好\"，I'm fine 'ok'"),
    ("&amp;lt;div&amp;gt;", "<div>"),                       # escaped twice
    ("a=1&copy=2 和 &foo; 不变", "a=1&copy=2 和 &foo; 不变"),  # no ';' or an unknown name: left alone
])
def test_html_entities_unescaped_in_every_turn(raw, expected):
    row = conv(0, raw, raw, system=raw)
    kept, _, _, notes = run([row, conv(1, "没有实体", ANSWER)], only(html_entities=True))
    assert [m["content"] for m in kept["messages"][0]] == [expected] * 3
    assert notes["normalized"] == {"html_entities": int(raw != expected)}


def test_html_entities_are_unescaped_before_the_filters_and_rejected_rows_stay_raw():
    escaped = "请解释 &lt;div&gt; 和 &lt;span&gt; 标签的区别 &quot;HTML&quot; &#39;"
    cjk = {"enabled": True, "min_share": 0.3}
    kept, rejected, _, notes = run([conv(0, escaped, "&lt;div&gt; 是块级元素，&lt;span&gt; 是行内元素。")],
                                   only(html_entities=True, cjk=cjk))
    assert kept.height == 1 and notes["normalized"]["html_entities"] == 1
    kept, rejected, _, _ = run([conv(0, escaped, "&lt;div&gt; 是块级元素，&lt;span&gt; 是行内元素。")], only(cjk=cjk))
    assert rejected["drop_reason"].to_list() == ["low_cjk_share"]  # what the entities did before
    kept, rejected, _, _ = run([conv(0, "&lt;&gt;&lt;&gt;", "&lt;")], only(html_entities=True, length=DEFAULTS["length"]))
    assert rejected["messages"][0][0]["content"] == "&lt;&gt;&lt;&gt;"


# --- filters --------------------------------------------------------------------------------------

def test_empty_turns():
    rows = [conv(0, "长城有多长？"), conv(1, "长城有多长？", ""), conv(2, "   ", ANSWER), conv(3, None),
            {"id": "r4", "source": "test", "messages": [], "meta": "{}"},
            {"id": "r5", "source": "test", "messages": [{"role": "user", "content": "只有问题"}], "meta": "{}"},
            conv(6, "有空系统提示也行", system="")]
    assert outcome(rows, only()) == (["r0", "r6"], {f"r{i}": "empty_turn" for i in range(1, 6)})


def test_mojibake():
    rows = [conv(0, "长城有多长？"), conv(1, "长城有多长？", "乱码\ufffd了"), conv(2, "锟斤拷锟斤拷"),
            conv(3, "ä¸­æ–‡是什么"), conv(4, "Itâ€™s broken"), conv(5, "cafÃ© 咖啡"),
            conv(6, "Café 和 naïve 是法语词"), conv(7, "温度是 25°C，价格 ¥30")]
    kept, dropped = outcome(rows, only(mojibake=True))
    assert kept == ["r0", "r6", "r7"]
    assert dropped == {f"r{i}": "mojibake" for i in (1, 2, 3, 4, 5)}
    assert outcome(rows, only(mojibake=False))[0] == [f"r{i}" for i in range(8)]


def test_length_bounds_in_characters():
    length = {"enabled": True, "min_prompt": 3, "max_prompt": 10, "min_answer": 4, "max_answer": 12}
    rows = [conv(0, "长城多长？", "约两万公里。"), conv(1, "多长", "约两万公里。"),
            conv(2, "请详细介绍一下长城的历史", "约两万公里。"), conv(3, "长城多长？", "很长"),
            conv(4, "长城多长？", "长城的总长度约为两万一千公里"),
            conv(5, "问题一", "回答"), ]
    # multi-turn: the prompt is every user turn, the answer every assistant turn
    rows.append({"id": "r6", "source": "test", "meta": "{}", "messages": [
        {"role": "user", "content": "一二三"}, {"role": "assistant", "content": "回答"},
        {"role": "user", "content": "四五"}, {"role": "assistant", "content": "好的"}]})
    kept, dropped = outcome(rows, only(length=length))
    assert kept == ["r0", "r6"]
    assert dropped == {"r1": "too_short_prompt", "r2": "too_long_prompt", "r3": "too_short_answer",
                       "r4": "too_long_answer", "r5": "too_short_answer"}


def test_cjk_share():
    rows = [conv(0, "长城有多长？"), conv(1, "How long is it?", "About 21,196 km long, built over centuries."),
            conv(2, "print 函数", "print('hello world') 会输出 hello world")]
    kept, dropped = outcome(rows, only(cjk={"enabled": True, "min_share": 0.3}))
    assert (kept, dropped) == (["r0"], {"r1": "low_cjk_share", "r2": "low_cjk_share"})
    assert outcome(rows, only(cjk={"enabled": True, "min_share": 0.1}))[0] == ["r0", "r2"]


@pytest.mark.parametrize("prompt", [
    "这个英文单词怎么拼写？", "How do you spell necessary?", "解释英语中现在完成时的用法", "什么是定语从句？",
    "找出与 cat 押韵的英语单词", "What rhymes with orange?", "这个单词的发音是什么？", "列举以字母 B 开头的单词",
    "美国感恩节的火鸡怎么烤？", "如何申请美国社会安全号？", "401(k) 退休计划怎么选？", "SAT 考试多少分能上哈佛？",
    "建议句子中“close”的同义词。", "ＳＰＥＬＬ this word",  # full-width letters are ASCII after normalisation
    # English-bound tasks that look Chinese once translated (issue 25)
    "识别并输出其中的副词：他弹得一手好钢琴。", "'看'的动词是什么？", "编辑下面的句子，使其语法正确：我正要去商店",
    "展开句子中给出的缩写词：我在NASA工作。", "用 ROT13 编码：你好", "将文本转换为 piglatin：我爱你",
])
def test_english_context_default_rules_drop(prompt):
    cfg = only(normalize=True, english_context={"enabled": True, "rules": None})
    assert outcome([conv(0, prompt)], cfg) == ([], {"r0": "english_context"})


@pytest.mark.parametrize("prompt", [
    "请写一首押韵的七言绝句", "英国的首都是哪里？", "请翻译成中文：I love China.", "中文的发音有几个声调？",
    "用中文解释一下什么是拼音", "中秋节有哪些习俗？", "这首诗的韵脚在哪里？", "美国和中国的时差是多少？",
    "“长城”的同义词有哪些？", "这首诗用了哪些修辞？",
    # translating into English or writing English is a good Chinese task (issue 25)
    "请把这句话翻译成英文：长城很美。", "用英语写一封感谢信", "“谢谢”用英文怎么说？", "将'我爱你'翻译成英文",
    "用合适的词填空：我今天<mask>去学校。", "总结这篇文章：https://example.com/news/ai-and-health",
])
def test_english_context_default_rules_keep(prompt):
    cfg = only(normalize=True, english_context={"enabled": True, "rules": None})
    assert outcome([conv(0, prompt)], cfg) == (["r0"], {})


def test_english_context_only_looks_at_the_prompt():
    cfg = only(english_context={"enabled": True, "rules": None})
    row = conv(0, "长城这个名字是什么意思？", "长城翻译成英文是 the Great Wall，意思是很长的城墙。")
    assert outcome([row], cfg)[0] == ["r0"]


def test_english_context_custom_rules_file(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - pattern: '火锅'\n    why: test rule\n  - pattern: 'ab+c'\n    why: ascii\n",
                     encoding="utf-8")
    cfg = only(english_context={"enabled": True, "rules": str(rules)})
    rows = [conv(0, "四川火锅怎么做？"), conv(1, "翻译成英文"), conv(2, "what is ABBC"), conv(3, "abd")]
    assert outcome(rows, cfg) == (["r1", "r3"], {"r0": "english_context", "r2": "english_context"})


def test_english_context_rule_with_unless(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - pattern: '押韵'\n    unless: '诗|歌'\n    why: rhymes of words\n", encoding="utf-8")
    cfg = only(english_context={"enabled": True, "rules": str(rules)})
    rows = [conv(0, "找一个与 cat 押韵的词"), conv(1, "写一首押韵的诗"), conv(2, "押韵的儿歌")]
    assert outcome(rows, cfg) == (["r1", "r2"], {"r0": "english_context"})


def test_english_context_rules_errors_name_the_rule(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - pattern: 'ok'\n  - pattern: '(unclosed'\n", encoding="utf-8")
    with pytest.raises(io.InputError, match=r"bad\.yaml, record 1, field 'pattern': invalid regular expression"):
        load_rules(bad)
    bad.write_text("rules:\n  - pattern: 'ok'\n    unless: '[z-a]'\n", encoding="utf-8")
    with pytest.raises(io.InputError, match=r"record 0, field 'unless': invalid regular expression"):
        load_rules(bad)
    bad.write_text("patterns: []\n", encoding="utf-8")
    with pytest.raises(io.InputError, match="field 'rules'"):
        load_rules(bad)
    with pytest.raises(io.InputError, match="missing.yaml"):
        load_rules(tmp_path / "missing.yaml")


def test_human_rejected():
    rows = [conv(0, "问题一"), conv(1, "问题二", ""), conv(2, "问题三")]
    assert outcome(rows, only(), human_rejected={"r1", "r2", "unknown"}) == (
        ["r0"], {"r1": "human_rejected", "r2": "human_rejected"})


def test_exact_duplicates_fold_punctuation_whitespace_and_case():
    rows = [conv(0, "长城有多长？"), conv(1, "长城有多长？ "), conv(2, "长城有多长！", ANSWER[:-1] + "!"),
            conv(3, "长城  有多长?"), conv(4, "《长城》有多长？"), conv(5, "长城有多长？", ANSWER + "就这样"),
            conv(6, "Great Wall 有多长？"), conv(7, "great wall, 有多长")]
    assert outcome(rows, only(exact_dedup=True)) == (
        ["r0", "r5", "r6"], {f"r{i}": "exact_duplicate" for i in (1, 2, 3, 4, 7)})


def test_dedup_key_keeps_turns_apart():
    split = [{"role": "user", "content": "长城有"}, {"role": "assistant", "content": "多长"}]
    other = [{"role": "user", "content": "长城"}, {"role": "assistant", "content": "有多长"}]
    rows = [{"id": f"r{i}", "source": "t", "meta": "{}", "messages": m} for i, m in enumerate([split, other])]
    assert outcome(rows, only(exact_dedup=True))[0] == ["r0", "r1"]


def test_punctuation_only_near_duplicate_is_caught_at_the_default_threshold():
    long_answer = ANSWER + "它始建于春秋战国时期，秦朝统一后将各国长城连接起来，明朝又进行了大规模的修缮。"
    variant = long_answer.replace("，", ",").replace("。", "！") + "对"
    rows = [conv(0, "介绍长城。", long_answer), conv(1, "介绍长城！", variant)]
    assert outcome(rows, only(near_dedup=DEFAULTS["near_dedup"])) == (["r0"], {"r1": "near_duplicate"})


def test_near_duplicates():
    other = "故宫又称紫禁城，是明清两代的皇家宫殿，位于北京中轴线的中心，现为故宫博物院。"
    edited = ANSWER.replace("军事", "军士").replace("万余里", "万多里")
    rows = [conv(0, "介绍长城", ANSWER), conv(1, "介绍长城", edited), conv(2, "介绍故宫", other)]
    near = {"enabled": True, "threshold": 0.5, "ngram": 3, "num_perm": 128, "seed": 1}
    assert outcome(rows, only(near_dedup=near)) == (["r0", "r2"], {"r1": "near_duplicate"})


def test_decontamination_drops_rows_overlapping_eval_questions():
    question = "在历史上，诸葛亮草船借箭发生在哪一年？"
    rows = [conv(0, "请回答：" + question), conv(1, "诸葛亮是哪里人？")]
    cfg = only(decontaminate={"enabled": True, "ngram": 8, "threshold": 0.5})
    assert outcome(rows, cfg, eval_questions=[question]) == (["r1"], {"r0": "contaminated"})
    kept, rejected, dropped, _ = run(rows, cfg)  # no eval questions: the filter has nothing to do
    assert kept.height == 2 and "contaminated" not in dropped


def test_first_matching_filter_gives_the_reason_and_counts():
    rows = [conv(0, "长城有多长？"), conv(1, "翻译成英文：你好", "锟斤拷"), conv(2, "翻译成英文：你好"),
            conv(3, "长城有多长？"), conv(4, "长城有多长？", "好")]
    kept, rejected, dropped, _ = run(rows, {"near_dedup": {"enabled": False}}, human_rejected={"r0"})
    assert kept["id"].to_list() == ["r3"]  # r0 is rejected by the reviewer, so r3 is the first copy
    assert dict(rejected.select("id", "drop_reason").iter_rows()) == {
        "r0": "human_rejected", "r1": "mojibake", "r2": "answer_language", "r4": "too_short_answer"}
    assert list(dropped.items()) == [
        ("human_rejected", 1), ("empty_turn", 0), ("mojibake", 1), ("too_short_prompt", 0), ("too_long_prompt", 0),
        ("too_short_answer", 1), ("too_long_answer", 0), ("missing_content", 0), ("english_context", 0),
        ("translated_code", 0), ("low_cjk_share", 0), ("answer_language", 1), ("answer_length", 0),
        ("answer_count", 0), ("degenerate", 0), ("truncated", 0), ("exact_duplicate", 0)]


def test_outputs_have_the_schemas_and_rejected_rows_stay_raw():
    rows = [conv(0, "长城  有多长？"), conv(1, "ＡＢ", "锟斤拷")]
    kept, rejected, _, _ = run(rows, {})
    assert kept.schema == pl.Schema(io.SCHEMA) and rejected.schema == pl.Schema(io.REJECTED_SCHEMA)
    assert kept["messages"][0][0]["content"] == "长城 有多长？"
    assert rejected["messages"][0][0]["content"] == "ＡＢ"  # as it came in, for the reviewer
    assert rejected["meta"].to_list() == ['{"n": 1}']


def test_empty_input():
    kept, rejected, dropped, _ = clean_frame(io.empty(), {})
    assert kept.height == rejected.height == 0 and set(dropped.values()) == {0}


# --- the Snakemake script -------------------------------------------------------------------------

def test_clean_source_script(tmp_path, repo_root, run_script):
    source = tmp_path / "src.json"
    records = [{"instruction": "长城有多长？", "input": "", "output": ANSWER},
               {"instruction": "长城有多长？", "input": "", "output": ANSWER},
               {"instruction": "请把这句话翻译成英文：你好", "input": "", "output": "Hello"},
               {"instruction": "在历史上，武松打虎发生在哪一年？", "input": "", "output": "这是小说情节。"},
               {"instruction": "故宫在哪里？", "input": "", "output": "故宫位于北京市中心。"}]
    source.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    questions = tmp_path / "eval.jsonl"
    questions.write_text(json.dumps({"id": "q1", "question": "在历史上，武松打虎发生在哪一年？"}, ensure_ascii=False)
                         + "\n", encoding="utf-8")
    out = tmp_path / "out"
    rules = repo_root / "culturalign" / "data" / "english_context.yaml"
    run_script("data/clean_source", input={"source": str(source), "rules": str(rules)},
               output={"clean": str(out / "clean.parquet"), "rejected": str(out / "rejected.parquet"),
                       "stats": str(out / "stats.json")},
               params={"name": "src", "fmt": "alpaca", "clean": {},
                       "eval_sets": [{"path": str(questions), "format": "jsonl"}],
                       "refine": {"enabled": False}, "refine_judge": None, "llm_cache": None, "usage": None,
                       "sample": None, "english_judge": None, "opinion_judge": None},
               wildcards={"stage": "knowledge", "source": "src"})
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    # translating into English is a sound Chinese task (issue 25): that row stays
    assert {k: v for k, v in stats["dropped"].items() if v} == {"contaminated": 1, "exact_duplicate": 1}
    assert (stats["source"], stats["rows_in"], stats["rows_kept"], stats["rows_rejected"], stats["refined"]) == (
        "src", 5, 3, 2, 0)
    assert pl.read_parquet(out / "clean.parquet").height == 3
    assert pl.read_parquet(out / "rejected.parquet")["drop_reason"].sort().to_list() == [
        "contaminated", "exact_duplicate"]


def test_halluqa_for_training_and_evaluation_is_contaminated(shared_data):
    path = shared_data / "halluqa" / "HalluQA.json"
    rows, rejected = formats.read_source(path, "halluqa", "halluqa")
    questions = [r["Question"] for r in json.loads(path.read_text(encoding="utf-8"))]
    kept, dropped_rows, dropped, _ = clean_frame(rows, {}, eval_questions=questions)
    assert rows.height + rejected.height == 450
    assert dropped["contaminated"] == rows.height and kept.height == 0


# --- translated code and short answers (labelled examples of both kinds) --------------------------

TRANSLATED = [
    "将 numpy 导入为 np 从 sklearn.svm 导入 SVC",
    "定义 add_two(x):\n    返回 x + 2",
    "导入 pandas 作为 pd\n数据 = pd.read_csv('a.csv')",
    "对于 i 在 range(10):\n    打印(i)",
    "如果 x > 5:\n    print('big')\n否则:\n    print('small')",
    "类 Dog(Animal):\n    def bark(self):\n        pass",
    "函数 add(a, b) {\n  return a + b;\n}",
    "公共 静态 无效 main(String[] args) {",
    "my_list.附加(4)\nprint(my_list)",
]
NOT_TRANSLATED = [
    "import numpy as np\nfrom sklearn.svm import SVC\ndef f(x):\n    return x + 2",
    "该函数返回列表的长度，如果列表为空则返回 0。",
    "如果下雨，我们就不去公园了。",
    "定义：光合作用是植物利用光能合成有机物的过程。",
    "如何从 Excel 导入 CSV 文件？",
    "对于这个问题：我认为答案是肯定的。",
    "打印机卡纸了应该怎么处理？",
    "返回主页后点击设置。",
    "for i in range(10):\n    print(i)  # 打印 0 到 9",
]


@pytest.mark.parametrize("text", TRANSLATED)
def test_translated_code_is_dropped(text):
    rows = [conv(0, "请看下面的代码：", text), conv(1, text + "\n这段代码有什么问题？")]
    assert outcome(rows, only(translated_code=True)) == ([], {"r0": "translated_code", "r1": "translated_code"})


@pytest.mark.parametrize("text", NOT_TRANSLATED)
def test_code_and_prose_are_not_translated_code(text):
    assert outcome([conv(0, "请解释：", text), conv(1, text)], only(translated_code=True))[0] == ["r0", "r1"]


SHORT_RIGHT = [("计算 (7-4)×2 的结果。", "6"), ("将下列食物分类为肉或蔬菜：牛排", "肉"), ("鲸鱼是鱼吗？", "否"),
               ("判断对错：太阳从东方升起。", "对"), ("3 加 5 等于多少？", "8"), ("这句话的情感是积极还是消极：我太开心了！", "积极"),
               ("从句子中提取人名：李白写了《静夜思》。", "李白"), ("中国的首都是哪里？", "北京。"), ("25 的 20% 是多少？", "5"),
               ("Is the sky blue? 回答 yes 或 no", "Yes"), ("选出不同类的一项：苹果、香蕉、汽车", "汽车"), ("一打鸡蛋有几个？", "12个")]
SHORT_WRONG = [("写一篇关于春天的短文。", "好"), ("介绍一下长城的历史。", "长城"), ("解释光合作用。", "是"),
               ("你能帮我写一封求职信吗？", "能"), ("列举三种水果。", "3"), ("给我讲一个故事。", "嗯"),
               ("计算并解释 (7-4)×2 的过程。", "6"), ("春节有哪些习俗？", "…"), ("请翻译：hello", "你"), ("描述一下你的家乡。", "美"),
               ("长城起源于哪个朝代？", "好"), ("鲸鱼是鱼吗？", "嗯")]


def test_short_answers_right_for_their_task_are_kept():
    length = {**DEFAULTS["length"], "min_answer": 5}
    rows = [conv(f"k{i}", p, a) for i, (p, a) in enumerate(SHORT_RIGHT)] + \
        [conv(f"d{i}", p, a) for i, (p, a) in enumerate(SHORT_WRONG)]
    kept, dropped = outcome(rows, only(length=length))
    assert kept == [f"rk{i}" for i in range(len(SHORT_RIGHT))]
    assert dropped == {f"rd{i}": "too_short_answer" for i in range(len(SHORT_WRONG))}
