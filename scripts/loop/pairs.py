"""Rule preference_pairs: a round's own answers -> results/data/safety/pairs_{model}.parquet (what a DPO/ORPO
round learns from), the prompts left unpaired with their reason, and the accounting
(culturalign.loop.remedies.build_pairs)."""
import logging

import polars as pl

from culturalign import io
from culturalign.evaluate.generate import generate
from culturalign.evaluate.judges import classify_refusal
from culturalign.loop.remedies import build_pairs, pair_accounting, prompt_items
from culturalign.util import log_to

log_to(snakemake.log[0])
params = snakemake.params
risky = prompt_items(pl.read_parquet(snakemake.input.safety))
benign = prompt_items(pl.read_parquet(snakemake.input.benign)) if snakemake.input.get("benign") else []
items = risky + benign
gen = params.generation
answers = generate(snakemake.input.model, items, max_new_tokens=gen["max_new_tokens"], batch_size=gen["batch_size"],
                   backend=gen.get("backend", "auto"))["answer"].to_list()
degrees = classify_refusal(items, answers, params.judge, cache_path=params.llm_cache, usage_path=params.usage)
pairs, unpaired = build_pairs(risky, benign, dict(zip([it["id"] for it in items], answers)),
                              dict(zip([it["id"] for it in items], degrees)))
io.write_parquet(pairs, snakemake.output.pairs)
io.write_parquet(unpaired, snakemake.output.unpaired)
accounting = pair_accounting(params.model, pairs, unpaired)
io.write_json(accounting, snakemake.output.accounting)
logging.info("pairs of %s: %s", params.model, accounting)
