"""Rule clean_shard: one shard of a sharded source -> its per-row filters' survivors, rejected rows and
compact dedup state (culturalign.data.shards.clean_shard); the evaluation questions are read here."""
from pathlib import Path

from culturalign.data.shards import clean_shard
from culturalign.data.source import shard_inputs
from culturalign.evaluate.guard import decontamination_questions
from culturalign.util import log_to

log_to(snakemake.log[0])
params = snakemake.params
inputs = shard_inputs(params.clean, str(snakemake.input.rules), decontamination_questions(params.eval_sets),
                      snakemake.input.get("decisions"),
                      params.name)
clean_shard(params.path, params.name, params.fmt, inputs.pop("cfg"), Path(snakemake.output.state).parent,
            shard=int(snakemake.wildcards.shard), shards=params.shards, columns=params.columns, roles=params.roles,
            batch_rows=params.clean["batch_rows"], **inputs)
