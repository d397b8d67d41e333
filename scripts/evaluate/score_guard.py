"""Rule score_guard: a model on every guard set (eval.guard) -> results/scores/{model}/guard.json, and one
row per question (set, id, the row as JSON) in results/generations/{model}/guard.parquet."""
import json
import logging

import polars as pl

from culturalign.evaluate.guard import score_guard
from culturalign.io import write_json, write_parquet
from culturalign.util import log_to

log_to(snakemake.log[0])
params = snakemake.params
report, rows = score_guard(snakemake.input.model, params.model, list(params.sets), judges=dict(params.judges),
                           default_judge=params.default_judge, generation=dict(params.generation),
                           categories=dict(params.categories), cache_path=params.llm_cache, usage_path=params.usage)
write_json(report, snakemake.output.scores)
write_parquet(pl.DataFrame({"set": [r["set"] for r in rows], "id": [str(r["id"]) for r in rows],
                            "row": [json.dumps(r, ensure_ascii=False, default=str) for r in rows]},
                           schema={"set": pl.String, "id": pl.String, "row": pl.String}), snakemake.output.rows)
for name, entry in report["sets"].items():
    logging.info("%s: %s", name, {k: v for k, v in entry.items() if k not in ("by_subject", "left_out")})
