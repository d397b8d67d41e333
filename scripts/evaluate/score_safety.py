"""Rule score_safety: judge a model's safety answers -> results/scores/{model}/safety.json.

input: mcq, risky (generation parquets), answer_key (optional, {id: letter} JSON).
params: model, eval (the eval.safety block), judge (refusal judge config), silver_judge (config or None),
mcq_method (how the MCQ answers were made: generate or loglik), llm_cache, usage (token-usage JSON; the silver judge writes *_silver.json).
"""
import logging

from culturalign.evaluate.generate import read_generations
from culturalign.io import write_json
from culturalign.evaluate.judges import NO_MCQ_KEY, classify_refusal, judge_name, mcq_key
from culturalign.evaluate.metrics import mcq_block, refusal_block, safety_report
from culturalign.util import log_to

log_to(snakemake.log[0])
params = snakemake.params
limit = params.eval["mcq"].get("limit")

mcq_items, mcq_answers = read_generations(snakemake.input.mcq)
found = mcq_key(mcq_items, answer_key_path=snakemake.input.get("answer_key"), silver_judge=params.silver_judge,
                subset=bool(limit), cache_path=params.llm_cache,
                usage_path=params.usage.removesuffix(".json") + "_silver.json")
mcq = mcq_block(mcq_items, mcq_answers, found[0], answer_key=found[1], limit=limit,
                method=params.mcq_method) if found else None

risky_items, risky_answers = read_generations(snakemake.input.risky)
degrees = classify_refusal(risky_items, risky_answers, params.judge, cache_path=params.llm_cache,
                           usage_path=params.usage)
limits = {s["path"]: s["limit"] for s in params.eval["risky"] if s.get("limit")}
report = safety_report(mcq, refusal_block(risky_items, risky_answers, degrees, limits), model=params.model,
                       judge=judge_name(params.judge), mcq_skipped=None if found else NO_MCQ_KEY)
write_json(report, snakemake.output[0])
logging.info("mcq %s, refusal %s", (mcq or {}).get("acc"), report["refusal"]["overall"])
