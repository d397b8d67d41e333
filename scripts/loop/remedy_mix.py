"""Rule remedy_mix: the safety mix of a replay or contrast round -> results/data/safety/train_{model}.parquet:
the safety stage's train.parquet plus a seeded share of the knowledge stage's rows (replay) or every cleaned
row of the contrast source (contrast)."""
import logging

import polars as pl

from culturalign import io
from culturalign.data.mix import mix
from culturalign.util import log_to

log_to(snakemake.log[0])
entry = snakemake.params.remedy   # the loop.safety.remedies entry
frames = {"safety": pl.read_parquet(snakemake.input.safety), "extra": pl.read_parquet(snakemake.input.extra)}
caps = {"extra": round(entry["share"] * frames["extra"].height)} if entry["name"] == "replay" else {}
train = mix(frames, caps, entry.get("seed", 0))
io.write_parquet(train, snakemake.output[0])
logging.info("%s: %d safety rows + %d of %d %s rows", entry["name"], frames["safety"].height,
             train.height - frames["safety"].height, frames["extra"].height, snakemake.input.extra)
