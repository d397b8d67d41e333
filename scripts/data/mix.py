"""Rule mix: the cleaned sources of one stage -> results/data/{stage}/train.parquet (capped per source),
written in bounded memory (culturalign.data.mix.mix_files)."""
import logging
from pathlib import Path

from culturalign.data.mix import mix_files
from culturalign.util import log_to

log_to(snakemake.log[0])
# results/data/{stage}/{source}/clean.parquet: the folder is the source name the caps are keyed by.
paths = {Path(path).parent.name: path for path in snakemake.input}
taken = mix_files(paths, snakemake.params.caps, snakemake.params.seed, snakemake.output[0])
logging.info("mix: %d rows from %s", sum(taken.values()), ", ".join(f"{name} {n}" for name, n in taken.items()))
