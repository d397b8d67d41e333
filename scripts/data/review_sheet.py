"""Rule review_sheet (on demand): a random, stably ordered sample of one source's kept rows as CSV."""
import logging

import polars as pl

from culturalign.data.review import review_sheet, write_sheet
from culturalign.util import log_to

log_to(snakemake.log[0])
params = snakemake.params
sheet = review_sheet(pl.read_parquet(snakemake.input[0]), params.sample, params.seed, clean_cfg=params.clean)
write_sheet(sheet, snakemake.output[0])
logging.info("review sheet: %d rows -> %s", sheet.height, snakemake.output[0])
