"""Cheap checks of whether a row's answer can fulfil its instruction, without a judge.

Each check is one vectorised polars expression over the prompt (all user turns) and the answer (all
assistant turns) of a row, and gives its own drop reason, in this order:

  missing_content   the task needs content that is not in the row: the instruction points at a text,
                    picture, link, attachment or video ("总结以下文章。", "这幅画", "观看视频并总结",
                    "总结这篇文章：https://...") that is absent, or the answer says so ("您没有提供文章")
  answer_language   the answer is not in the language asked for: a Chinese request answered in English
                    prose (code blocks aside), a translation into English or Chinese that is not in it
  answer_length     the instruction states a length in characters or sentences ("50字", "80字以内",
                    "用一句话") that the answer clearly misses
  answer_count      the instruction asks for N items ("列出五种", "提供三个") and the answer's numbered
                    list has a different number of items
  degenerate        the same sentence or line over and over
  truncated         the answer stops mid-sentence (ends in a comma, colon or opening bracket, or a
                    long last line without end punctuation that still has a comma in it)

They are deliberately conservative: a sound row dropped costs more than a broken one kept, because the
judge second opinion (culturalign.data.opinion) and the human review sheet look at the rest.
"""
from __future__ import annotations

import polars as pl

NUM = r"(?:[0-9]+|[一二两三四五六七八九十百千]+)"
DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}

# --- missing content ---------------------------------------------------------------------------------
# What an instruction can point at (这篇文章, 以下句子, 给定的文本, 这幅画 ...).
THINGS = (r"(?:句子|句话|文章|文本|段落|段话|文字|文档|文件|诗歌|诗|歌词|故事|评论|评价|邮件|电子邮件|信件|来信|对话|"
          r"新闻|报道|报告|演讲|演讲稿|画作|画|图片|图像|照片|图表|视频|影片|音频|录音|歌曲|链接|网站|网页|网址|场景|"
          r"食谱|菜谱|标志|徽标|表格|数据集|数据|列表|清单|陈述|声明|推文|博客|产品描述|描述|短文|论文|摘要|菜单|合同|"
          r"简历|广告|代码|程序|方程|问题|选项|段|篇|首|幅|张)")
# 给出 and 提供 point at content only as 给出的 / 提供的 ("给出的文章"); alone they ask for it ("给出一元二次方程的求根公式").
DEICTIC = r"(?:(?:以下|下面|下列|如下|给定|所给|附上|附件中|随附|上传|这段|这篇|这则|这首|这幅|这张|这部|这份|这封|这个|这些|该|此)的?|(?:给出|提供)的)"
POINTS_AT = DEICTIC + r"\s*\p{Han}{0,6}?" + THINGS
# Tasks that describe how to handle some content in general ("创建一个针对给定数据集的系统") need none.
GENERAL_TASK = r"(?i)系统|模型|算法|方法|如何|怎样|怎么|策略|代码|程序|函数|脚本|编写|实现|python|java|sql|《[^》]+》"
# The prompt itself carries content: a second line (the input), text after a colon, or a quoted passage.
HAS_CONTENT = r"\n\s*\S|[:：]\s*\S.{4,}|[“\"「《『][^”\"」》』]{6,}|[.。!！?？].+[.。!！?？]"
# The answer says the content is missing (apologies of the kind "您没有提供文章", "我无法查看图片").
ANSWER_MISSING = (r"(?:您|你)(?:并|还)?(?:没有|没|未|并未|尚未)(?:给出|提供|给我|附上|上传|指定|说明|发送|提及|提到|告诉我)"
                  r"|(?:请|麻烦)(?:您|你)?(?:先|重新)?(?:提供|给出|附上|上传|发送|分享|贴出)(?:一下)?(?:您|你)?(?:想要|需要|要|所)?.{0,8}"
                  + THINGS +
                  r"|(?:无法|不能|没办法)(?:访问|查看|看到|打开|浏览|播放|观看|收听|读取|获取)(?:该|这个|这些|此|您|你|所|任何|网络|互联网)?"
                  r"(?:提供的|给出的|提到的|所指的|的)?(?:链接|网页|网站|网址|图片|图像|照片|视频|音频|文件|附件|文章|URL|url|内容|画|外部)"
                  r"|(?:无法|不能)(?:看到|查看|访问|观看|评估|评价)(?:这个|该|此|这幅|这张|这篇|您的|你的|任何)"
                  r"|(?:没有|没|未)(?:看到|收到|找到)(?:您|你)?(?:提供|给出|附上|上传)?的?(?:任何)?" + THINGS)
URL = r"https?://\S+|www\.[\w-]+\.\S+"
# Tasks that are about the content behind a link, not about the link itself (writing code that fetches it is).
ABOUT_LINKED = r"总结|概括|摘要|评价|评估|评分|分析|阅读|描述|解释|翻译|分类|观看|收听|看完|读完|回答|主要观点|主题|讲了什么|说了什么"
CODE_TASK = r"(?i)代码|程序|函数|脚本|爬虫|编写|实现|正则|python|java|html|css|sql|api|json|http请求|url格式|解析"
# "总结一篇关于……的文章", "总结文章“什么是算法？”": an article known only by its topic or title.
ABSENT_ARTICLE = (r"^(?:请)?(?:总结|概括|摘要|归纳)(?:一下)?(?:一篇|这篇|该|有关|关于)?.{0,30}(?:文章|论文|报告|研究|新闻报道|博客文章)"
                  r"\s*(?:[“\"《「][^”\"》」\n]{1,40}[”\"》」])?\s*(?:的要点|的内容|的主要观点)?[。.]?$")

# A bare imperative on a text that is not there: "用一句话结束故事。", "修改诗歌的押韵方式。", "总结文章。"
BARE_TASK = (r"^(?:请)?(?:用一句话|用一段话)?(?:结束|续写|完成|继续|改写|重写|总结|概括|翻译|校对|编辑|修改|润色|缩短|扩写|分析|评价|评论|"
             r"改进|简化)(?:一下)?(?:这个|这篇|这段|这首|该|此|下面的|以下的|给定的|所给的)?(?:故事|文章|句子|段落|文本|诗歌?|邮件|评论|文字)"
             r"(?:的[\p{Han}]{1,6})?[。.]?$")


def missing_content(prompt: pl.Expr, answer: pl.Expr) -> pl.Expr:
    """True where the row lacks the content its task needs (module doc)."""
    answer_head = answer.str.slice(0, 160)
    no_content = ~prompt.str.contains(HAS_CONTENT)
    says_missing = answer_head.str.contains(ANSWER_MISSING) & (answer.str.len_chars() < 400) & no_content
    points_nowhere = prompt.str.contains(POINTS_AT) & no_content & ~prompt.str.contains(GENERAL_TASK) \
        & (prompt.str.len_chars() < 60)
    only_link = prompt.str.contains(URL) & prompt.str.contains(ABOUT_LINKED) & ~prompt.str.contains(CODE_TASK) \
        & (prompt.str.replace_all(URL, "").str.len_chars() < 80)
    absent_text = prompt.str.contains(ABSENT_ARTICLE) | prompt.str.contains(BARE_TASK)
    return says_missing | points_nowhere | only_link | absent_text


# --- language -----------------------------------------------------------------------------------------
CODE_BLOCK = r"(?s)```.*?(?:```|$)"
CODE_SYNTAX = r"[;{}=<>]|[A-Za-z_]\w*\(|(?m)^[ \t]{2,}\S"
# A line of code outside a fenced block: code syntax, indentation, or a keyword that starts a statement.
CODE_LINE = (r"(?m)^(?:[ \t]{2,}.*|.*(?:[;{}=<>]|\w\(|//|#\s).*|[ \t]*(?:def|class|import|from|for|while|if|return|print|"
             r"SELECT|UPDATE|INSERT|DELETE|CREATE|public|function|const|let|var|#include)(?-u:\b).*)$")
HAN = r"[\x{3400}-\x{4DBF}\x{4E00}-\x{9FFF}\x{F900}-\x{FAFF}]"   # CJK ideographs (a small class: fast)
LATIN_WORD = r"[A-Za-z]{2,}"
# Prompts whose answer may rightly be in English or hold much Latin text.
FOREIGN_OK = (r"(?i)英[文语]|english|翻译|译|外语|拼音|代码|程序|编程|函数|sql|python|java|html|css|json|正则|命令|"
              r"公式|方程|缩写|全称|单词|字母|法语|德语|日语|西班牙语|拉丁|俄语|韩语|意大利语|名字|名称|品牌|列出.{0,6}(?:书|电影|歌|专辑)")
INTO_ENGLISH = r"(?:翻译|译|翻|转换|改写)(?:成|为|到|至)\s*(?:英[文语]|English)|用英[文语](?:写|回答|表达|说)"
INTO_CHINESE = r"(?:翻译|译|翻)(?:成|为|到|至)\s*(?:中文|汉语|普通话)"


def _gated(prompt: pl.Expr, answer: pl.Expr, candidate, check) -> pl.Expr:
    """`check(prompt, answer)` on the rows where the cheap `candidate(prompt, answer)` holds, False on the
    others: one cheap pass over every row, the costly regexes on the few candidates only (a when/then
    would run them on every row). Row by row all the same: a row's verdict depends on that row alone."""
    def run(pairs: pl.Series) -> pl.Series:
        rows = pairs.struct.unnest()
        index = rows.select(candidate(pl.col("p"), pl.col("a")).fill_null(False)).to_series().arg_true()
        result = pl.Series(pairs.name, [False] * len(rows), dtype=pl.Boolean)
        if len(index):
            hits = rows[index].select(check(pl.col("p"), pl.col("a")).fill_null(False)).to_series()
            result = result.scatter(index, hits)
        return result
    return pl.struct(p=prompt, a=answer).map_batches(run, return_dtype=pl.Boolean)


def _share(text: pl.Expr, pattern: str) -> pl.Expr:
    letters = text.str.count_matches(pattern) + text.str.count_matches(r"[A-Za-z]")
    return (text.str.count_matches(pattern) / letters).fill_nan(0.0)


def wrong_language(prompt: pl.Expr, answer: pl.Expr) -> pl.Expr:
    """True where the answer is not in the language the prompt asks for (module doc). An answer with code
    syntax outside fenced blocks is code, not prose in another language, and is left alone."""
    return _gated(prompt, answer, lambda p, a: (a.str.count_matches(LATIN_WORD) >= 4) | p.str.contains(INTO_ENGLISH),
                  _wrong_language)


def _wrong_language(prompt: pl.Expr, answer: pl.Expr) -> pl.Expr:
    into_english = prompt.str.contains(INTO_ENGLISH)
    prose = answer.str.replace_all(CODE_BLOCK, "")
    words, han = prose.str.count_matches(LATIN_WORD), _share(prose, HAN)
    english_prose = (words >= 4) & (han < 0.2) & ~prose.str.contains(CODE_SYNTAX)
    chinese_request = (_share(prompt, HAN) > 0.6) & ~prompt.str.contains(FOREIGN_OK)
    # A translation into English that came out Chinese: the answer has almost no Latin words.
    not_english = into_english & (han > 0.8) & (words < 2)
    not_chinese = prompt.str.contains(INTO_CHINESE) & english_prose & (prompt.str.count_matches(LATIN_WORD) >= 3)
    return (chinese_request & english_prose) | not_english | not_chinese


# --- length and count ------------------------------------------------------------------------------------
_LIMIT = NUM + r"\s*个?(?:汉)?字(?:以内|之内|以下|内)|(?:不超过|不多于|少于|最多|限)\s*" + NUM + r"\s*个?(?:汉)?字"
_AROUND = NUM + r"\s*个?(?:汉)?字(?:左右|的|长)?(?:[\p{Han}]{0,6})?(?:诗|文|段|描述|故事|总结|摘要|介绍|评论|回答|说明|短文|文章|概述|简介)"
_SENTENCES = r"(?:用|以|写|写出|在)\s*(一|两|二|三|1|2|3)\s*(?:个)?句(?:话|子)?(?:来|内|以内)?(?:概括|总结|描述|回答|解释|说明|介绍|表达|结束|完成)"
NOT_A_LENGTH = r"成语|四字|三字经|字母|字符串|汉字.{0,4}(?:笔画|结构)|十字架|十字路|生辰八字|字数统计|个字的(?:词|单词)"


def _number(text: pl.Expr) -> pl.Expr:
    """The integer a run of digits or of Chinese numerals (up to 9,999) stands for; null otherwise."""
    digits = text.str.extract(r"^([0-9]+)$").cast(pl.Int64, strict=False)
    chinese = text.str.replace_all("两", "二")
    value = pl.lit(0)
    for unit, scale in (("千", 1000), ("百", 100), ("十", 10)):
        part = chinese.str.extract("([一二三四五六七八九]?)" + unit, 1)
        value = value + pl.when(part.is_null()).then(0).otherwise(
            pl.when(part == "").then(scale).otherwise(part.replace_strict(DIGITS, default=0, return_dtype=pl.Int64) * scale))
    ones = chinese.str.extract("([一二三四五六七八九])$", 1).replace_strict(DIGITS, default=0, return_dtype=pl.Int64)
    total = value + ones.fill_null(0)
    return pl.coalesce(digits, pl.when(total > 0).then(total))


def _han(answer: pl.Expr) -> pl.Expr:
    return answer.str.count_matches(HAN)


def length_violated(prompt: pl.Expr, answer: pl.Expr) -> pl.Expr:
    """True where a stated length is clearly missed: a limit exceeded by more than 50 % (+10 characters),
    a target length off by more than half, more than N+1 sentences for "用N句话"."""
    return _gated(prompt, answer, lambda p, a: p.str.contains(r"字|句"), _length_violated)


def _length_violated(prompt: pl.Expr, answer: pl.Expr) -> pl.Expr:
    ok = ~prompt.str.contains(NOT_A_LENGTH)
    limit = _number(prompt.str.extract("(" + NUM + r")\s*个?(?:汉)?字(?:以内|之内|以下|内)", 1)
                    .fill_null(prompt.str.extract(r"(?:不超过|不多于|少于|最多|限)\s*(" + NUM + r")\s*个?(?:汉)?字", 1)))
    target = _number(prompt.str.extract("(" + NUM + ")" + _AROUND[len(NUM):], 1))
    over_limit = prompt.str.contains(_LIMIT) & (limit >= 10) & (_han(answer) > limit * 1.5 + 10)
    off_target = ~prompt.str.contains(_LIMIT) & (target >= 10) & (
        (_han(answer) > target * 1.5 + 5) | (_han(answer) < target * 0.5))
    sentences = _number(prompt.str.extract(_SENTENCES, 1))
    said = answer.str.strip_chars().str.count_matches(r"[。！？!?](?:[”’\"」』）)]*)(?:\s|$|[^。！？!?])")
    too_many = (sentences > 0) & (said > sentences + 1) & (answer.str.count_matches(r"(?m)^\s*[0-9]+[.、)]") == 0)
    return ok & (over_limit | off_target | too_many).fill_null(False)


_ASKS_N = (r"(?:列出|列举|给出|提供|写出|说出|举出|生成|建议|推荐|命名|找出|想出|描述|介绍|总结|识别|确定|选出|分享)"
           r"(?:了|一下)?\s*(" + NUM + r")\s*(?:个|种|条|项|点|件|位|本|首|部|家|款|道|类|样|名|座|处|句|步|篇|只|所|则|大)")
NUMBERED = r"(?m)^[ \t]*(?:[0-9]{1,2}[.、)）]|[（(][0-9]{1,2}[)）])\s*\S"
# "一个" is too common to count ("写一个计划" may rightly hold numbered steps): only things that are
# themselves the items asked for count with N = 1.
ONE_ITEM = (r"(?:给出|提供|建议|推荐|命名|想出|生成|说出|举出|写出)一(?:个|种|条|项|件|位|本|首|部|家|款|道|句|座|处|所)"
            r".{0,16}"
            r"(?:问题|建议|例子|名字|名称|标题|地方|城市|国家|地点|度假地|目的地|词|单词|口号|书|电影|歌曲?|活动|游戏|爱好|职业|礼物|动物|植物|颜色|食物|菜|水果|运动|品牌|网站)[。.？?]?$")


def count_violated(prompt: pl.Expr, answer: pl.Expr) -> pl.Expr:
    """True where the prompt asks for N items and the answer's numbered list holds a different number."""
    return _gated(prompt, answer, lambda p, a: a.str.contains(NUMBERED), _count_violated)


def _count_violated(prompt: pl.Expr, answer: pl.Expr) -> pl.Expr:
    asked = _number(prompt.str.extract(_ASKS_N, 1))
    items = answer.str.count_matches(NUMBERED)
    many = (asked >= 2) & (asked <= 20) & (items >= 2) & (items != asked) \
        & ~prompt.str.contains(r"至少|以上|或更多|多个|一些|几个|每|分别|步骤|和.{0,6}" + NUM + r"\s*个")
    one = prompt.str.contains(ONE_ITEM) & (items >= 3)
    return (many | one).fill_null(False)


# --- degenerate and truncated --------------------------------------------------------------------------------
def degenerate(answer: pl.Expr) -> pl.Expr:
    """True where at least four sentences/lines of 4+ characters are there and at most half of them differ."""
    return _gated(answer, answer, lambda p, a: a.str.count_matches(r"[。！？!?\n]") >= 4, lambda p, a: _degenerate(a))


def _degenerate(answer: pl.Expr) -> pl.Expr:
    pieces = answer.str.replace_all(r"[。！？!?\n]+", "\x00").str.split("\x00").list.eval(
        pl.element().str.strip_chars().filter(pl.element().str.strip_chars().str.len_chars() >= 4))
    return (pieces.list.len() >= 4) & (pieces.list.n_unique() * 2 <= pieces.list.len())


CUT_OFF = r"[，、,；;：:—（(“\[]\s*$"
LONG_CLAUSE = r"(?m)[^\n]{30,}$"


def truncated(answer: pl.Expr) -> pl.Expr:
    """True where the answer stops mid-sentence (module doc); code answers are left alone."""
    return _gated(answer, answer, lambda p, a: ~a.str.strip_chars().str.slice(-1).is_in(list(ENDS)),
                  lambda p, a: _truncated(a))


ENDS = "。！？!?.…」』”\"'）)】]》>~～*`"   # an answer ending in one of these is finished


def _truncated(answer: pl.Expr) -> pl.Expr:
    text = answer.str.strip_chars()
    last_line = text.str.split("\n").list.last()
    cut = text.str.contains(CUT_OFF)
    mid_sentence = last_line.str.contains(r"\p{Han}[^\n]*[，,][^\n]*[\p{Han}0-9]$") & (last_line.str.len_chars() >= 30)
    code = text.str.contains(r"```") | last_line.str.contains(CODE_LINE)
    return (cut | mid_sentence) & ~code


CHECKS = ("missing_content", "answer_language", "answer_length", "answer_count", "degenerate", "truncated")


def answer_checks(prompt: pl.Expr, answer: pl.Expr) -> dict[str, pl.Expr]:
    """{reason: condition} of every check, in CHECKS order."""
    return {"missing_content": missing_content(prompt, answer),
            "answer_language": wrong_language(prompt, answer),
            "answer_length": length_violated(prompt, answer),
            "answer_count": count_violated(prompt, answer),
            "degenerate": degenerate(answer),
            "truncated": truncated(answer)}
