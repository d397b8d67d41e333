"""Rule loop_summary: the rounds of one loop and the model it selected -> results/loop/{stage}.json."""
import logging

from culturalign.io import read_json, write_json
from culturalign.loop import summarize
from culturalign.util import log_to

log_to(snakemake.log[0])
summary = summarize([read_json(path) for path in snakemake.input], snakemake.params.target)
write_json(summary, snakemake.output[0])
logging.info("selected %s (%s) after %d evaluations", summary["selected"], summary["reason"], len(summary["rounds"]))
