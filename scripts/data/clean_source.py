"""Rule clean_source: one training source -> clean.parquet, rejected.parquet, stats.json. An unsharded
source is cleaned here in batches (culturalign.data.source.write_clean_source); a sharded one was cleaned by
the clean_shard jobs and is merged here (culturalign.data.shards.merge_shards). The evaluation questions to
decontaminate against are read here: the data stage imports no evaluation code."""
from pathlib import Path

from culturalign import io
from culturalign.data import shards
from culturalign.data.source import refine_args, write_clean_source
from culturalign.evaluate.guard import decontamination_questions
from culturalign.util import log_to

log_to(snakemake.log[0])
params = snakemake.params
out = snakemake.output
if params.shards > 1:
    workdirs = [Path(p).parent for p in snakemake.input.kept]
    stats = shards.merge_shards(
        workdirs, params.name, params.clean, out.clean, out.rejected,
        sample_note=shards.load_note(snakemake.input.decisions), sample=bool(params.sample),
        decontaminated=bool(params.eval_sets),
        refine=refine_args(params.refine, params.refine_judge, params.llm_cache, params.usage,
                           snakemake.wildcards.stage == "knowledge", params.clean),
        split={"shards": params.shards, "batch_rows": params.batch_rows, "shard_size": params.shard_size,
               "records": [shards.state_records(d) for d in workdirs]})
else:
    stats = write_clean_source(
        params.path, params.name, params.fmt, params.clean, out.clean, out.rejected,
        rules_path=str(snakemake.input.rules),
        eval_questions=decontamination_questions(params.eval_sets),
        decisions_path=snakemake.input.get("decisions"),
        refine_cfg=params.refine,
        refine_judge=params.refine_judge,
        llm_cache=params.llm_cache,
        usage_path=params.usage,
        sample=params.sample,
        english_judge=params.english_judge,
        opinion_judge=params.opinion_judge,
        columns=params.columns,
        roles=params.roles,
        batch_rows=params.batch_rows or shards.BATCH_ROWS,
        benign=snakemake.wildcards.stage == "knowledge",
    )
io.write_json(stats, out.stats)
