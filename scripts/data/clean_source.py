"""Rule clean_source: one training source file -> clean.parquet, rejected.parquet, stats.json
(culturalign.data.source.clean_source: read, reviewer's decisions, filters, optional refinement, accounting).
The evaluation questions to decontaminate against are read here: the data stage imports no evaluation code."""
from culturalign import io
from culturalign.data.source import clean_source
from culturalign.evaluate.evalsets import load_questions
from culturalign.evaluate.guard import guard_questions
from culturalign.util import log_to

log_to(snakemake.log[0])
params = snakemake.params
questions = [q for s in params.eval_sets   # guard sets (marked `guard`) have their own loaders
             for q in (guard_questions(s) if s.get("guard") else load_questions(s["path"], s.get("format")))]
kept, rejected, stats = clean_source(
    snakemake.input.source, params.name, params.fmt, params.clean,
    rules_path=str(snakemake.input.rules),
    eval_questions=questions,
    decisions_path=snakemake.input.get("decisions"),
    refine_cfg=params.refine,
    refine_judge=params.refine_judge,
    llm_cache=params.llm_cache,
    usage_path=params.usage,
    sample=params.sample,
    english_judge=params.english_judge,
    opinion_judge=params.opinion_judge,
    benign=snakemake.wildcards.stage == "knowledge",
)
io.write_parquet(kept, snakemake.output.clean)
io.write_parquet(rejected, snakemake.output.rejected)
io.write_json(stats, snakemake.output.stats)
