"""Rule build_tiny: the demo base model (results/models/tiny) from config `tiny` and the demo corpus."""
import logging

from culturalign.train.tiny import build_tiny
from culturalign.util import log_to

log_to(snakemake.log[0], stderr=True)  # tokenizers/transformers warnings too
options = {k: v for k, v in dict(snakemake.params.tiny).items() if k != "corpus"}
with open(snakemake.input.corpus, encoding="utf-8") as f:
    texts = [line.rstrip("\n") for line in f]
build_tiny(snakemake.output[0], texts, **options)
logging.info("tiny model built from %d lines of %s: %s", len(texts), snakemake.input.corpus, options)
