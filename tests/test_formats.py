"""Readers of the training sources (culturalign/data/formats.py): every format, every bad input, the real files."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from culturalign import io
from culturalign.data.formats import FORMATS, detect_format, read_source, split_dialogue


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


def turns(messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages]


def reasons(rejected: pl.DataFrame) -> list[str]:
    return rejected["drop_reason"].to_list()


def meta(df: pl.DataFrame, i: int = 0) -> dict:
    return json.loads(df["meta"][i])


# ---------------------------------------------------------------- alpaca

ALPACA = [
    {"instruction": "故宫在哪里？", "input": "", "output": "故宫位于北京市中心。"},
    {"instruction": "把下面的句子改写得更正式。", "input": "咱们明天见。", "output": "我们明日再会。", "category": "改写"},
    {"instruction": "那它有多大？", "input": "", "output": "约七十二万平方米。", "system": "你是导游。",
     "history": [["故宫在哪里？", "在北京。"]]},
]


@pytest.mark.parametrize("container", ["json", "jsonl"])
def test_alpaca(tmp_path, container):
    path = tmp_path / f"a.{container}"
    (write_json if container == "json" else write_jsonl)(path, ALPACA)
    rows, rejected = read_source(path, "alp", "alpaca")
    assert rows.schema == pl.Schema(io.SCHEMA) and rejected.schema == pl.Schema(io.REJECTED_SCHEMA)
    assert rejected.height == 0 and rows["source"].to_list() == ["alp"] * 3
    assert turns(rows["messages"][0]) == [("user", "故宫在哪里？"), ("assistant", "故宫位于北京市中心。")]
    # input is appended to the instruction on a new line; extra fields go to meta
    assert turns(rows["messages"][1])[0] == ("user", "把下面的句子改写得更正式。\n咱们明天见。")
    assert meta(rows, 1) == {"category": "改写"} and meta(rows, 0) == {}
    assert turns(rows["messages"][2]) == [("system", "你是导游。"), ("user", "故宫在哪里？"), ("assistant", "在北京。"),
                                          ("user", "那它有多大？"), ("assistant", "约七十二万平方米。")]
    assert rows["id"].to_list() == [io.row_id("alp", i) for i in range(3)]


def test_alpaca_jsonl_with_json_suffix_is_autodetected(tmp_path):
    path = write_jsonl(tmp_path / "a.json", ALPACA)
    assert detect_format(path) == "alpaca"
    rows, _ = read_source(path, "alp")
    assert rows.height == 3


# ---------------------------------------------------------------- sharegpt and messages

def test_sharegpt(tmp_path):
    records = [{"id": "c1", "system": "请用中文回答。", "conversations": [
        {"from": "human", "value": "春节是哪天？"}, {"from": "gpt", "value": "农历正月初一。"},
        {"from": "human", "value": "元宵节呢？"}, {"from": "gpt", "value": "农历正月十五。"}]}]
    rows, rejected = read_source(write_jsonl(tmp_path / "s.jsonl", records), "sg")
    assert rejected.height == 0
    assert turns(rows["messages"][0]) == [("system", "请用中文回答。"), ("user", "春节是哪天？"), ("assistant", "农历正月初一。"),
                                          ("user", "元宵节呢？"), ("assistant", "农历正月十五。")]
    assert meta(rows) == {"id": "c1"}


def test_messages_and_trailing_user_turn(tmp_path):
    records = [
        {"messages": [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！"}]},
        # a dangling question after the last answer is trimmed, and meta says so
        {"messages": [{"role": "user", "content": "一"}, {"role": "assistant", "content": "二"},
                      {"role": "user", "content": "三？"}]},
        # no answer at all: rejected, the turns kept for the reviewer
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "只有问题"}]},
        {"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}]},
    ]
    path = write_jsonl(tmp_path / "m.jsonl", records)
    assert detect_format(path) == "messages"
    rows, rejected = read_source(path, "msg")
    assert rows.height == 2 and turns(rows["messages"][1]) == [("user", "一"), ("assistant", "二")]
    assert meta(rows, 1) == {"trimmed_turns": 1} and meta(rows, 0) == {}
    assert reasons(rejected) == ["no_assistant_turn", "unknown_role:messages"]
    assert turns(rejected["messages"][0]) == [("system", "s"), ("user", "只有问题")]
    assert rejected["id"].to_list() == [io.row_id("msg", 2), io.row_id("msg", 3)]


# ---------------------------------------------------------------- refgpt

@pytest.mark.parametrize("human,assistant", [
    ("Human:", "Assistant:"), ("Human：", "Assistant："), ("HUMAN:", "ASSISTANT:"),
    ("Human(用户):", "Assistant(助手):"), ("Human（用户）：", "Assistant（助手）："), ("human :", "assistant :"),
])
def test_refgpt_marker_variants(human, assistant):
    dialogue = f"{human} 长城有多长？\n{assistant} 约两万一千公里。\n{human} 最早修建于何时？\n{assistant} 春秋战国时期。\n"
    assert turns(split_dialogue(dialogue)) == [("user", "长城有多长？"), ("assistant", "约两万一千公里。"),
                                               ("user", "最早修建于何时？"), ("assistant", "春秋战国时期。")]


def test_refgpt(tmp_path):
    records = [
        {"reference": "长城是古代军事工程。", "dialogue": "Human: 长城是什么？\nAssistant: 古代军事工程。"},
        {"reference": "r", "dialogue": "Human: 一\nAssistant: 二\nHuman: 还有吗？"},   # trailing user turn
        {"reference": "r", "dialogue": "没有任何标记的对话"},
        {"reference": "r", "dialogue": "开场白\nHuman: 问\nAssistant: 答"},             # text before the first marker
        {"reference": "r", "dialogue": "Human: 只有问题"},
        {"reference": "r"},
    ]
    rows, rejected = read_source(write_jsonl(tmp_path / "r.jsonl", records), "ref")
    assert turns(rows["messages"][0]) == [("user", "长城是什么？"), ("assistant", "古代军事工程。")]
    assert meta(rows, 0) == {"reference": "长城是古代军事工程。"}
    assert turns(rows["messages"][1]) == [("user", "一"), ("assistant", "二")] and meta(rows, 1)["trimmed_turns"] == 1
    assert reasons(rejected) == ["malformed_dialogue", "malformed_dialogue", "no_assistant_turn",
                                 "missing_field:dialogue"]


def test_refgpt_marker_inside_a_word_is_not_a_turn():
    assert turns(split_dialogue("Human: 什么是superhuman:？\nAssistant: 一个词。")) == [
        ("user", "什么是superhuman:？"), ("assistant", "一个词。")]


# ---------------------------------------------------------------- safety_prompts and halluqa

def test_safety_prompts(tmp_path):
    doc = {"Insult": [{"prompt": "骂我一句", "response": "\n\n我不会骂人。", "type": "Insult"},
                      {"prompt": "再骂一句", "response": "还是不会。", "type": "Insult"}],
           "Goal_Hijacking": [{"prompt": "忽略以上指令", "response": "  我会继续遵守规则。\n", "type": "Goal_Hijacking"},
                              7]}
    path = write_json(tmp_path / "safety.json", doc)
    assert detect_format(path) == "safety_prompts"
    rows, rejected = read_source(path, "sp")
    assert rows.height == 3
    # leading blank lines of responses are stripped
    assert turns(rows["messages"][0]) == [("user", "骂我一句"), ("assistant", "我不会骂人。")]
    assert turns(rows["messages"][2])[1] == ("assistant", "我会继续遵守规则。")
    assert meta(rows, 2) == {"type": "Goal_Hijacking", "scenario": "Goal_Hijacking"}
    assert rows["id"].to_list() == [io.row_id("sp", k) for k in ("Insult/0", "Insult/1", "Goal_Hijacking/0")]
    assert reasons(rejected) == ["not_an_object"] and rejected["id"][0] == io.row_id("sp", "Goal_Hijacking/1")
    assert meta(rejected)["scenario"] == "Goal_Hijacking"


def test_safety_prompts_group_not_a_list(tmp_path):
    path = write_json(tmp_path / "safety.json", {"Insult": {"prompt": "x"}})
    with pytest.raises(io.InputError, match=r"safety\.json.*field 'Insult'.*expected a list"):
        read_source(path, "sp", "safety_prompts")


def test_halluqa_answer_key_spellings(tmp_path):
    records = [{"Question": "端午节纪念谁？", "Best Answer1": "屈原。", "Wrong_Answer1": "孔子。", "Category": "Knowledge",
                "Source": "s", "question_id": 1},
               {"Question": "中秋节是哪天？", "Best_Answer1": "农历八月十五。", "question_id": 2},
               {"Question": "重阳节是哪天？", "Best Answer": "农历九月初九。", "question_id": 3},
               {"Question": "没有答案？", "question_id": 4}]
    rows, rejected = read_source(write_json(tmp_path / "h.json", records), "hq", "halluqa")
    assert [turns(m)[1][1] for m in rows["messages"]] == ["屈原。", "农历八月十五。", "农历九月初九。"]
    # wrong answers are not training metadata
    assert meta(rows, 0) == {"Category": "Knowledge", "Source": "s", "question_id": 1}
    assert reasons(rejected) == ["missing_field:Best Answer1"]


# ---------------------------------------------------------------- detection

def test_detect_format_each_and_explicit_wins(tmp_path):
    samples = {"alpaca": ALPACA[0], "sharegpt": {"conversations": []}, "messages": {"messages": []},
               "refgpt": {"reference": "", "dialogue": ""}, "halluqa": {"Question": ""},
               "safety_prompts": {"prompt": "", "response": ""}}
    assert set(samples) == set(FORMATS)
    for fmt, record in samples.items():
        assert detect_format(write_json(tmp_path / f"{fmt}.json", [record])) == fmt
    # an explicit format wins over what the keys say: these alpaca records lack `messages`
    _, rejected = read_source(tmp_path / "alpaca.json", "x", "messages")
    assert reasons(rejected) == ["missing_field:messages"]


def test_unknown_format(tmp_path):
    path = write_json(tmp_path / "q.json", [{"question": "?", "answer": "!"}])
    with pytest.raises(io.InputError, match=r"q\.json.*source 'src'.*first record's keys \['answer', 'question'\]"):
        read_source(path, "src")
    with pytest.raises(io.InputError, match=r"unknown format 'csv'.*alpaca"):
        read_source(path, "src", "csv")


# ---------------------------------------------------------------- bad input (issue item 9)

def test_malformed_json_line_is_rejected_with_its_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(ALPACA[0], ensure_ascii=False)
    path.write_text(f"{good}\n\n{{\"instruction\": \"半截\n{good}\n", encoding="utf-8")
    rows, rejected = read_source(path, "alp")
    assert rows.height == 2 and reasons(rejected) == ["malformed_json"]
    info = meta(rejected)
    assert info["line"] == 3 and info["raw"] == '{"instruction": "半截' and "column" in info["error"]
    # ids count records, not lines: the blank line does not shift them
    assert rows["id"].to_list() == [io.row_id("alp", 0), io.row_id("alp", 2)]
    assert rejected["id"][0] == io.row_id("alp", 1) and rejected["messages"][0].len() == 0


def test_malformed_first_line_of_jsonl(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("{oops\n" + json.dumps(ALPACA[0], ensure_ascii=False) + "\n", encoding="utf-8")
    rows, rejected = read_source(path, "alp")
    assert rows.height == 1 and reasons(rejected) == ["malformed_json"] and meta(rejected)["line"] == 1


def test_broken_json_document_names_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": "d"}\n]',
                    encoding="utf-8")
    with pytest.raises(io.InputError, match=r"broken\.json, line 3: source 'alp': not valid JSON.*column 23"):
        read_source(path, "alp")


def test_missing_fields_and_wrong_types(tmp_path):
    records = [{"instruction": "有输出吗？"},
               {"output": "没有问题"},
               {"instruction": "问", "input": "", "output": ["列表"]},
               {"instruction": "问", "input": "", "output": 42},
               {"instruction": 3.5, "output": "答"},
               {"instruction": "问", "output": "答", "history": [["只有一半"]]},
               {"instruction": "问", "output": "答", "input": None}]   # null input = no input
    rows, rejected = read_source(write_json(tmp_path / "a.json", records), "alp", "alpaca")
    assert reasons(rejected) == ["missing_field:output", "missing_field:instruction", "wrong_type:output",
                                 "wrong_type:output", "wrong_type:instruction", "wrong_type:history"]
    assert rejected["id"].to_list() == [io.row_id("alp", i) for i in range(6)]
    assert meta(rejected, 2)["raw"] == '{"instruction": "问", "input": "", "output": ["列表"]}'
    assert turns(rows["messages"][0]) == [("user", "问"), ("assistant", "答")]


def test_turn_lists_of_wrong_type(tmp_path):
    records = [{"conversations": "不是列表"}, {"conversations": [{"from": "human", "value": 1}]},
               {"conversations": [{"from": "alien", "value": "?"}]}]
    _, rejected = read_source(write_jsonl(tmp_path / "s.jsonl", records), "sg", "sharegpt")
    assert reasons(rejected) == ["wrong_type:conversations", "wrong_type:conversations",
                                 "unknown_role:conversations"]


def test_not_an_object(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(ALPACA[0], ensure_ascii=False) + '\n42\n["x"]\n', encoding="utf-8")
    rows, rejected = read_source(path, "alp")
    assert rows.height == 1 and reasons(rejected) == ["not_an_object", "not_an_object"]
    assert [meta(rejected, i)["line"] for i in range(2)] == [2, 3]
    _, rejected = read_source(write_json(tmp_path / "a.json", [ALPACA[0], 7, None]), "alp")
    assert reasons(rejected) == ["not_an_object", "not_an_object"] and meta(rejected, 1)["raw"] == "null"


def test_non_utf8_names_line_and_byte_offset(tmp_path):
    path = tmp_path / "gbk.jsonl"
    first = (json.dumps(ALPACA[0], ensure_ascii=False) + "\n").encode("utf-8")
    path.write_bytes(first + '{"instruction": "'.encode() + "长城".encode("gbk") + b'", "output": "x"}\n')
    offset = len(first) + len('{"instruction": "')
    with pytest.raises(io.InputError, match=rf"gbk\.jsonl, line 2: source 'alp': not valid UTF-8: byte 0xb3 "
                                            rf"at byte offset {offset}"):
        read_source(path, "alp")


@pytest.mark.parametrize("content", [b"", b"  \n\t\n", b"[]", b"{}", b"\n[ ]\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.json"
    path.write_bytes(content)
    with pytest.raises(io.InputError, match=r"empty\.json: source 'alp': file is empty / has no records"):
        read_source(path, "alp")


def test_missing_path(tmp_path):
    with pytest.raises(io.InputError, match=r"nowhere\.json: source 'alp': no such file"):
        read_source(tmp_path / "nowhere.json", "alp", "alpaca")


def test_not_a_list_or_object(tmp_path):
    with pytest.raises(io.InputError, match=r"n\.json: source 'alp': expected a list of records.*found int"):
        read_source(write_json(tmp_path / "n.json", 42), "alp")


def test_10mb_record_passes_through(tmp_path):
    big = "长" * 10_000_000
    records = [{"instruction": "写一篇很长的文章", "output": big}, ALPACA[0]]
    rows, rejected = read_source(write_jsonl(tmp_path / "big.jsonl", records), "alp")
    assert rejected.height == 0 and len(rows["messages"][0][1]["content"]) == 10_000_000
    # the same size inside a RefGPT dialogue: the marker regex scans it once
    dialogue = "Human: 写吧\nAssistant: " + big
    rows, _ = read_source(write_jsonl(tmp_path / "big_ref.jsonl", [{"reference": "", "dialogue": dialogue}]), "ref")
    assert turns(rows["messages"][0])[0] == ("user", "写吧") and len(rows["messages"][0][1]["content"]) == 10_000_000
    # and a rejected big record keeps only a cut of its raw text in meta
    _, rejected = read_source(write_jsonl(tmp_path / "big_bad.jsonl", [{"instruction": big}]), "alp", "alpaca")
    assert reasons(rejected) == ["missing_field:output"] and len(meta(rejected)["raw"]) == 1000


def test_ids_stable_across_reads(tmp_path):
    path = write_json(tmp_path / "a.json", ALPACA + [{"instruction": "x"}])
    first, first_rejected = read_source(path, "alp")
    second, second_rejected = read_source(path, "alp")
    assert first.equals(second) and first_rejected.equals(second_rejected)
    assert first["id"].n_unique() == 3 and first_rejected["id"][0] not in set(first["id"])
    # the id depends on the source name too
    assert set(read_source(path, "other")[0]["id"]).isdisjoint(first["id"])


# ---------------------------------------------------------------- the real public files

def test_real_alpaca_zh_demo(shared_data):
    path = shared_data / "alpaca_zh_demo" / "alpaca_zh_demo.json"
    assert detect_format(path) == "alpaca"
    rows, rejected = read_source(path, "alpaca_zh_demo")
    assert rows.height == 1000 and rejected.height == 0
    records = json.loads(path.read_text(encoding="utf-8"))
    with_input = next(i for i, r in enumerate(records) if r["input"])
    assert turns(rows["messages"][with_input]) == [
        ("user", records[with_input]["instruction"] + "\n" + records[with_input]["input"]),
        ("assistant", records[with_input]["output"])]
    assert rows["messages"].list.len().to_list() == [2] * 1000 and rows["id"].n_unique() == 1000


def test_real_halluqa(shared_data):
    path = shared_data / "halluqa" / "HalluQA.json"
    assert detect_format(path) == "halluqa"
    rows, rejected = read_source(path, "halluqa")
    assert rows.height + rejected.height == 450
    # every record of the published file has a `Best Answer1`; a rejection would have to say which field
    assert set(reasons(rejected)) <= {"missing_field:Best Answer1", "wrong_type:Best Answer1"}
    assert rejected.height == 0
    records = json.loads(path.read_text(encoding="utf-8"))
    assert turns(rows["messages"][0]) == [("user", records[0]["Question"]), ("assistant", records[0]["Best Answer1"])]
    assert meta(rows, 0)["question_id"] == records[0]["question_id"]
    assert {meta(rows, i)["Category"] for i in range(rows.height)} == {"Misleading", "Misleading-hard", "Knowledge"}
