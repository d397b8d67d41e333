"""Rule loop_summary: the rounds of one loop and the model it selected -> results/loop/{stage}.json (the safety
loop's rounds also name their remedy and why, culturalign.loop.remedies.annotate)."""
import logging

from culturalign.io import read_json, write_json
from culturalign.loop.decisions import round_record, summarize
from culturalign.loop.remedies import annotate
from culturalign.util import log_to

log_to(snakemake.log[0])
inputs = snakemake.input
guards = inputs.get("guard") or [None] * len(inputs.score)
knowledge = inputs.get("knowledge") or [None] * len(inputs.score)
rounds = [round_record(read_json(s), guard=g and read_json(g), knowledge=k and read_json(k))
          for s, g, k in zip(inputs.score, guards, knowledge)]
summary = summarize(rounds, snakemake.params.target, snakemake.params.guard, snakemake.params.max_failed)
if snakemake.wildcards.stage == "safety":
    summary = annotate(summary, snakemake.params.remedies, {p: read_json(p) for p in inputs.get("pairs") or []})
write_json(summary, snakemake.output[0])
for r in summary["rounds"]:
    logging.info("%s: %s", r["model"], "passed" if r["passed"] else "; ".join(r["why"]))
logging.info("selected %s (%s) after %d evaluations: %s", summary["selected"], summary["reason"],
             len(summary["rounds"]), summary["note"])
