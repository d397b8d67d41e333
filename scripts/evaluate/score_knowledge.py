"""Rule score_knowledge: judge a model's knowledge answers -> results/scores/{model}/knowledge.json.

params: model (name), eval (the eval.knowledge block: path, format, threshold_T, limit), judge (the judge's
config), llm_cache, usage (token-usage JSON of an LLM judge).
"""
import logging

from culturalign.evaluate.evalsets import evalset_name
from culturalign.evaluate.generate import read_generations
from culturalign.io import write_json
from culturalign.evaluate.judges import judge_name, score_knowledge
from culturalign.evaluate.metrics import knowledge_report
from culturalign.util import log_to

log_to(snakemake.log[0])
params = snakemake.params
items, answers = read_generations(snakemake.input.generations)
scores = score_knowledge(items, answers, params.judge, cache_path=params.llm_cache, usage_path=params.usage)
report = knowledge_report(items, answers, scores, model=params.model,
                          benchmark=evalset_name(params.eval.get("format"), params.eval["path"]),
                          judge=judge_name(params.judge), threshold=params.eval["threshold_T"],
                          limit=params.eval.get("limit"))
write_json(report, snakemake.output[0])
logging.info("ACC %s (n_scored %d, judge failures %d)", report["acc"]["overall"], report["n_scored"],
             report["n_judge_failed"])
