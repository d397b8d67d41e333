"""Rule mix: the cleaned sources of one stage -> results/data/{stage}/train.parquet (capped per source)."""
import logging

from pathlib import Path

import polars as pl

from culturalign import io
from culturalign.data.mix import mix
from culturalign.util import log_to

log_to(snakemake.log[0])
# results/data/{stage}/{source}/clean.parquet: the folder is the source name the caps are keyed by.
frames = {Path(path).parent.name: pl.read_parquet(path) for path in snakemake.input}
train = mix(frames, snakemake.params.caps, snakemake.params.seed)
io.write_parquet(train, snakemake.output[0])
logging.info("mix: %d rows from %s", train.height,
             ", ".join(f"{name} {rows.height}" for name, rows in frames.items()))
