"""Machine-translated code and markup, in any language: the `translated_code` filter's patterns.

A machine translator turns the keywords, types, tags and identifiers of code into Chinese (导入 numpy 为 np,
选择 * 从 客户, 整数 总和 = 0;, <标题>, 颜色: 红色;, 光盘 /home), and so its function, method and table names,
closing tags, CSS values and LaTeX commands (def 阶乘(n):, numbers.地图(, FROM 订单, </表>, display: 弹性;,
\开始{方程}), often in one line of an otherwise intact snippet (除了 ValueError:), or its ASCII syntax into
full-width punctuation (print（"hi"）, x = 5；, color：red；, {"id": 1}，). Such code does not run and teaches
a model wrong syntax. Intact code stays: Chinese comments, Chinese string literals, Chinese JSON keys and
Chinese prose around the code. Measured on tests/data/code_cases.jsonl (README, "Row judgements").

Every pattern needs code structure around the Chinese token (an identifier, brackets, an operator, a
line ending in a colon, a semicolon or a brace), so Chinese prose such as "该函数返回列表的长度",
"如果下雨，我们就不去了" or "从客户中选择一位" does not match. Patterns are in polars' (Rust) regex
dialect: \\p{Han} is a Chinese character; (?m) makes ^ and $ match at line ends. They are combined
into a few alternations (TRANSLATED_CODE), so the whole filter is a few vectorised str.contains.
"""
from __future__ import annotations

import polars as pl

ID = r"[A-Za-z_][\w.]*"          # an ASCII identifier (dotted names allowed)
HAN_ID = r"[\p{Han}A-Za-z_][\p{Han}\w]*"   # an identifier that may be Chinese

PYTHON = [
    r"(?:^|[\s，。;；])(?:将|把)\s*[A-Za-z_][\w.]*\s*导入为\s*[A-Za-z_]",             # 将 numpy 导入为 np
    r"^[ \t]*(?:导入|import)\s+[A-Za-z_][\w.]*\s+(?:为|作为)\s+[A-Za-z_]\w*",          # 导入 numpy 为 np
    r"^[ \t]*导入\s+[a-z_][\w.]*[ \t]*$",                                              # 导入 os
    r"(?:^[ \t]*|[A-Za-z_0-9]\s+)(?:从|from)\s+[A-Za-z_][\w.]*\s+(?:导入|进口)\s+[A-Za-z_*]",  # 从 sklearn 导入 SVC
    r"^[ \t]*(?:定义|高清|防御)\s+[A-Za-z_\p{Han}][\w\p{Han}]*\s*\([^()\n]*\)\s*[:：]",      # 定义 add(x):
    r"^[ \t]*(?:def|class)\s+[A-Za-z_]\w*\s*(?:\([^()\n]*\))?\s*：",                       # def f(x)：
    r"^[ \t]*(?:返回|打印)\s*[A-Za-z0-9_(\[\"'][^\n\p{Han}]*$",                            # 返回 x + 2
    r"^[ \t]*打印\s*\([^\n]*\)[ \t]*;?[ \t]*$",                                          # 打印("你好")
    r"(?:=|(?-u:\b)in|在)\s*(?:输入|范围|长度|列表|字典|整数|字符串|浮点)\s*\(",                  # x = 输入(...), in 范围(10)
    r"^[ \t]*(?:如果|否则如果|而|当)\s+[^\n\p{Han}]+[:：][ \t]*$",                          # 如果 x > 0:
    r"^[ \t]*(?:否则|别的)\s*[:：][ \t]*$",                                            # else:
    # try: / finally: / except E: only before an indented line ("最后：" alone is a heading in prose)
    r"^[ \t]*(?:试试|尝试|最后|最终|除了\s+[A-Za-z_]\w*(?:\s+(?:作为|as)\s+\w+)?)\s*[:：][ \t]*\n[ \t]+[A-Za-z_]",
    r"^[ \t]*(?:def|class|function|func)\s+\w*\p{Han}[\w\p{Han}]*\s*[(:{]",                 # def 阶乘(n): a translated name
    r"^[ \t]*对于\s+[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*\s+(?:在|中|于)\s+[^\n]*[:：][ \t]*$",  # for i in ...:
    r"^[ \t]*(?:类|班级)\s+[A-Za-z_]\w*\s*(?:\([^()\n]*\))?\s*[:：][ \t]*$",                 # class Dog:
    r"^[ \t]*(?:if|elif|for|while|else|try|except|with)(?-u:\b)[^\n]*：[ \t]*$",                  # if x > 0：
    r"[A-Za-z_]\w*\.\w*\p{Han}[\w\p{Han}]*\s*\(",                                          # lst.附加(x), df.下降na()
    r"\p{Han}+\.[A-Za-z_]\w*\s*\(",                                                         # 扫描.nextLine()
    r"(?:^|[^\w])(?:真|假|无)\s*(?:==|!=)|(?:==|!=|=)\s*(?:真|假|无)[ \t]*(?:$|[)\]:,])",     # x == 真, return 无
]
C_FAMILY = [   # Java, C, C++, C#, JavaScript, Go
    r"^[ \t]*(?:函数|功能)\s+[A-Za-z_\p{Han}][\w\p{Han}]*\s*\([^()\n]*\)\s*\{?[ \t]*$",    # 函数 f(x) {
    r"函数\s*\([^()\n]*\)\s*\{",                                                          # function() {
    r"^[ \t]*(?:常量|让|变量|变)\s+[A-Za-z_\p{Han}][\w\p{Han}]*\s*=[^=\n;；]*[;；][ \t]*$",  # 常量 x = 1;
    r"(?:公共|公开|私有|私人|受保护)\s+(?:静态\s+)?(?:无效|类|空|整数|字符串|布尔|双|int|void|String|static)[\s(]",  # public static void
    r"(?:public|private|static|protected)\s+(?:static\s+)?(?:无效|空|整数|字符串|布尔|双|主)[\s(]",
    r"(?:^|[\s(;{,])(?:整数|整型|字符串|布尔值?|双精度|双|浮点数?|长整型|字符)\s+[A-Za-z_\p{Han}][\w\p{Han}]*\s*(?:=[^=]|[,;；(]|\[\d*\])",  # 整数 总和 = 0;
    r"^[ \t]*(?:为了|对于|为)\s*\(?[^\n;]*;[^\n;]*;[^\n]*\{[ \t]*$",                          # for (i = 0; i < n; i++) {
    r"^[ \t]*(?:公共\s+|公开\s+)?(?:类|班级|结构体?)\s+[\w\p{Han}]+\s*(?::[^\n{]*)?\n?[ \t]*\{",   # 类 矩形 {
    r"(?-u:\b)(?:int|long|double|float|char|bool|boolean|String|var|let|const|auto)\s+\p{Han}[\w\p{Han}]*\s*(?:=[^=]|;|\[)",  # int 总和 = 0;
    r"(?:^|[^A-Za-z0-9_])(?:new|新)\s+(?:随机|扫描仪|字符串|数组列表|列表|对象|日期)\s*\(|新\s+[A-Z]\w*\s*\(",   # new 随机(), 新 Scanner(
    r"System\.out\.打印|系统\.(?:出|out)\.\w+|System\.出\.\w+|控制台\.(?:日志|log)|console\.(?:日志|记录)",
    r"(?:文档|document)\.(?:获取|getElementById|querySelector)\w*|document\.获取",
    r"窗口\.(?:alert|onload|location|警报|addEventListener)|警报\s*\(\s*[\"'“‘]",           # window.alert, alert(
    r"(?:整数|字符串|浮点|双精度)\s*\[\s*\]\s*[A-Za-z_\p{Han}]",                             # int[] a
    r"addEventListener\s*\(\s*['\"‘“]\s*\p{Han}|\.(?:on|添加事件监听器)\s*\(\s*['\"‘“]\s*\p{Han}{1,4}['\"’”]",  # "点击"
    r"#\s*(?:包括|包含|定义)\s*[<\"]|(?:^|\s)使用\s+命名空间\s+std|std::(?:计数|输出|字符串|向量)",   # #包括 <stdio.h>
    r"^[ \t]*(?:如果|而|对于|当)\s*\([^\n]*\)\s*\{",                                      # 如果 (x > 0) {
    r"\}\s*(?:否则|别的)\s*(?:\{|如果)|^[ \t]*(?:否则|别的)\s*\{",                          # } else {
    r"^[ \t]*(?:返回|打印)\s+[^\n\p{Han}]*;[ \t]*$",                                        # 返回 x;
]
SQL = [
    r"(?:选择|选取|挑选)\s*(?:\*|[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)\s+(?:从|来自|FROM)\s+[A-Za-z_\p{Han}]",  # 选择 * 从 客户
    r"(?i:(?-u:\b)select(?-u:\b))[^\n]{0,120}\s(?:从|来自)\s+[A-Za-z_\p{Han}]",                            # SELECT name 从 客户
    r"(?i:(?-u:\b)from\s+[A-Za-z_]\w*)\s+(?:其中|在哪里|哪里|何处)\s+[A-Za-z_\p{Han}]",                 # FROM t 其中 x = 1
    r"(?:从|来自)\s*[A-Za-z_\p{Han}][\w\p{Han}]*\s*(?:其中|在哪里|哪里)\s*[A-Za-z_\p{Han}][\w\p{Han}]*\s*(?:=|>|<|LIKE|like)",
    r"(?:从|来自)\s*\p{Han}+\s*中?(?:选择|选取)\s*(?:\*|[A-Za-z_]\w*\s*,)",                       # 从客户中选择 *
    r"(?i:(?-u:\b)update)\s+[A-Za-z_\p{Han}][\w\p{Han}]*\s+(?:设置|集合|组)\s+[A-Za-z_\p{Han}]",        # UPDATE t 设置 x = 1
    r"(?:更新|UPDATE)\s+[A-Za-z_\p{Han}][\w\p{Han}]*\s+(?:设置|集合)\s+[A-Za-z_\p{Han}][\w\p{Han}]*\s*=",
    r"插入\s*(?:到|进入|INTO)\s*[A-Za-z_\p{Han}][\w\p{Han}]*\s*(?:\(|值|VALUES)",              # 插入到 t (
    r"(?i:(?-u:\b)(?:insert\s+into|create\s+table)\s+[A-Za-z_]\w*\s*)(?:值|价值)",
    r"(?:分组|组|排序|订购|订单)\s*(?:通过|依据|按|由)\s+[A-Za-z_][\w.]*(?:\s+(?:DESC|ASC|降序|升序))?\s*[;；]?[ \t]*$",  # ORDER BY
    r"(?i:(?-u:\b)(?:where|and|or|having)\s+[A-Za-z_]\w*\s*(?:=|>|<)\s*[^\n]{1,40}?\s)(?:和|或|与)\s+[A-Za-z_]\w*\s*(?:=|>|<)",
    r"(?:创建|删除)\s*(?:表|TABLE)\s+[A-Za-z_\p{Han}][\w\p{Han}]*\s*\(",                     # 创建表 t (
    r"计数\s*\(\s*\*\s*\)",                                                                  # COUNT(*)
    r"(?-u:\b)(?:SELECT|FROM|INTO|UPDATE|JOIN|TABLE|GROUP BY|ORDER BY)\s+\p{Han}",                # FROM 订单: a translated table
    r"^[ \t]*(?:值|价值观?)\s*\(\s*['\"\d][^)\n]*,",                                              # VALUES ('a', 1
    r"^[ \t]*按\s+[A-Za-z_][\w.]*\s+(?:(?:降序|升序)\s*)?排序\s*[;；]?[ \t]*$",                 # ORDER BY name
    r"(?i:(?-u:\b)(?:select|delete)(?-u:\b))\s+[^\n]{0,80}(?i:(?-u:\b)from(?-u:\b))\s+\p{Han}+\s+(?i:where)(?-u:\b)",   # FROM 客户 WHERE
]
MARKUP = [
    r"<\s*(?:标题|段落|头|身体|正文|主体|链接|图片|图像|按钮|表格|表单|输入|列表|项目|脚本|样式|分区|跨度|元|强调|粗体)\s*(?:\s[^<>\n]*)?>[^<\n]*</\s*\p{Han}{1,4}\s*>",  # <标题>..</标题>
    r"</\s*(?:标题|段落|头|身体|正文|主体|链接|按钮|表格|表单|列表|脚本|样式|分区|跨度|超文本)\s*>",
    r"<\p{Han}{1,4}\s+[a-z]+\s*=\s*[\"']",                                                 # <按钮 type="submit">
    r"<(?:div|p|a|span|img|button|input|form|table|td|tr|li|ul|ol|h[1-6]|body|section|link|script)(?-u:\b)[^<>\n]*\s(?:类|风格|样式|标识|源|链接|名称|类型|值|宽度|高度)\s*=",   # class→类
    r"<!(?:文档类型|DOCTYPE\s+\p{Han})",
    r"</\s*\p{Han}{1,6}\s*>",                                                                 # </表>
    r"<[a-z][a-z0-9]*\s[^<>\n]*[a-z-]+\s*=\s*[“”]",                                             # onclick=“...”
    r"\\\p{Han}{1,4}\s*[{｛]|\\[A-Za-z]+\s*｛",                                                # \开始{, \frac｛
    r"^[ \t]+[a-z][a-z-]*\s*:\s*\p{Han}{1,5}\s*;[ \t]*$",                                        # display: 弹性;
    r"\{[^{}]*(?:^|[;{\s])(?:颜色|背景颜色|背景|字体大小|字体粗细|字体|边距|外边距|内边距|宽度|高度|边框|显示|位置|填充|文本对齐|对齐)\s*[:：]\s*[^;；{}\n]+[;；]",  # 颜色: 红色;
    r"(?i:(?-u:\b)(?:color|background-color|background|display|position|text-align|float|border-style|font-weight|visibility))\s*:\s*(?:红色|蓝色|绿色|白色|黑色|黄色|灰色|块|无|居中|左|右|中心|绝对|相对|固定|粗体|隐藏|可见|实线|继承)\s*[;}]",
]
SHELL_JSON = [
    r"(?m:^[ \t]*\$?[ \t]*(?:光盘|回声|须藤|制作目录)\s+[-\"'./~$A-Za-z_])",                     # cd → 光盘, echo → 回声
    r"(?-u:\b)(?:pip3?|npm|apt|apt-get|yum|brew|conda)\s+(?:安装|卸载|更新)\s+[-A-Za-z_]",        # pip 安装 numpy
    r"(?-u:\b)git\s+(?:提交|推送|拉取|克隆|添加|分支|合并|签出|状态)",                          # git 提交
    r"[\"“][A-Za-z_\p{Han}][\w\p{Han} ]*[\"”]\s*:\s*(?:真|假|空|无)\s*[,}\n]",                 # "active": 真
    r"\{\s*“[^”\n]{1,30}”\s*[:：]\s*[“\d\[{]",                                               # {“name”: ...
    r"[{,]\s*[\"“][^\"”\n]{1,30}[\"”]\s*：\s*[\"“\d\[{]",                                    # "name"：...
]
FULL_WIDTH = [   # ASCII code syntax written with full-width punctuation
    r"^[ \t]*[a-z_][\w]*(?:\.[A-Za-z_]\w*)*（(?:[^（）\n\p{Han}]*|[\"“'][^（）\n]*)）[ \t]*[;；:：]?[ \t]*$",  # print（x）
    r"^[ \t]*[A-Za-z_]\w*(?:\[[^\]\n]*\])?\s*(?:=|\+=|-=)\s*[^\n]*[A-Za-z0-9_)\]\"']\s*；[ \t]*$",  # x = 5；
    r"(?-u:\b)(?:print|printf|println|console\.log|alert|puts|echo|len|range|input)\s*[（(]\s*[“‘]",  # print(“hi”)
    r"^[ \t]*(?:for|while|if)\s*（[^\n]*）\s*\{",                                          # for （...） {
    r"(?-u:\b)(?:def|function|func|fn)\s+[A-Za-z_]\w*\s*（",                                      # def f（
    r"(?-u:\b)[a-z_][\w.]*（(?:[^（）\n\p{Han}]|[\"'“‘][^\"'”’\n]*[\"'”’])*）\s*[;；{)）]",       # greet（"小明"）；
    r"^[ \t]*(?:return|[A-Za-z_][\w.]*\s*(?:=|\(|（|\+\+|--))(?:[^\n\p{Han}]|[\"'“‘][^\"'”’\n]*[\"'”’])*；[ \t]*$",                  # return x；
    r"(?:^|[\s{;\"“])[a-z][a-z-]*\s*：\s*[#A-Za-z0-9.%-]+\s*；",                                 # color：red；
    r"^[ \t]*\"[^\"\n]{1,30}\"\s*:\s*[^\n]+，[ \t]*$|\{[^{}\n]*\"[^\"\n]*\"\s*:[^{}\n]*\}\s*，[ \t]*$",   # "id": 1，
]

# Three alternations, not one: a single one of all the patterns outgrows the regex engine's lazy-DFA cache
# and falls back to a matcher ~100x slower; each of these stays well inside it.
TRANSLATED_CODE = tuple("(?m)" + "|".join(group) for group in (PYTHON + FULL_WIDTH, C_FAMILY + SHELL_JSON, SQL + MARKUP))


def translated_code(text: pl.Expr) -> pl.Expr:
    """True where `text` holds machine-translated code or markup (module doc)."""
    return pl.any_horizontal([text.str.contains(pattern) for pattern in TRANSLATED_CODE])


def translated_code_in(texts: list[str]) -> list[bool]:
    """The same check on plain strings (one vectorised call)."""
    return pl.select(translated_code(pl.Series(texts, dtype=pl.String))).to_series().fill_null(False).to_list()
