"""Rule score_safety: judge a model's safety answers -> results/scores/{model}/safety.json.

input: mcq, risky (generation parquets), answer_key (optional, {id: letter} JSON).
params: model, eval (the eval.safety block), judge (refusal judge config), silver_judge (config or None),
llm_cache, usage (token-usage JSON; the silver judge writes *_silver.json).
The MCQ key is, in order: the answer_key file (gold), `gold` fields of the MCQ file (gold), labels from
the silver judge (silver); with none of them the mcq block is null with mcq_skipped.
"""
import logging

from culturalign.evalsets import load_answer_key
from culturalign.generate import read_generations
from culturalign.io import write_json
from culturalign.judges import classify_refusal, judge_name, silver_key
from culturalign.metrics import mcq_block, refusal_block, safety_report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
params = snakemake.params
mcq_cfg = params.eval["mcq"]

mcq_items, mcq_answers = read_generations(snakemake.input.mcq)
key_file = getattr(snakemake.input, "answer_key", None)
mcq, skipped = None, None
if key_file:
    key = load_answer_key(key_file, mcq_items, subset=bool(mcq_cfg.get("limit")))
    mcq = mcq_block(mcq_items, mcq_answers, key, answer_key="gold", limit=mcq_cfg.get("limit"))
elif mcq_items and all(it.get("gold") for it in mcq_items):
    key = {it["id"]: it["gold"] for it in mcq_items}
    mcq = mcq_block(mcq_items, mcq_answers, key, answer_key="gold", limit=mcq_cfg.get("limit"))
elif params.silver_judge:
    key = silver_key(mcq_items, params.silver_judge, cache_path=params.llm_cache,
                     usage_path=params.usage.removesuffix(".json") + "_silver.json")
    mcq = mcq_block(mcq_items, mcq_answers, key, answer_key="silver", limit=mcq_cfg.get("limit"))
else:
    skipped = "no answer key: set eval.safety.mcq.answer_key (gold) or eval.safety.mcq.silver_judge (silver)"

risky_items, risky_answers = read_generations(snakemake.input.risky)
degrees = classify_refusal(risky_items, risky_answers, params.judge, cache_path=params.llm_cache,
                           usage_path=params.usage)
limits = {s["path"]: s["limit"] for s in params.eval["risky"] if s.get("limit")}
report = safety_report(mcq, refusal_block(risky_items, risky_answers, degrees, limits), model=params.model,
                       judge=judge_name(params.judge), mcq_skipped=skipped)
write_json(report, snakemake.output[0])
logging.info("mcq %s, refusal %s", (mcq or {}).get("acc"), report["refusal"]["overall"])
