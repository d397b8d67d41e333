"""Rule report: results/report/report.md and report.html (paper Tables 2-4, rounds, data, training, cost)."""
import logging

from culturalign.report.render import build_report
from culturalign.util import log_to

log_to(snakemake.log[0])
build_report(
    compared=dict(snakemake.params.compared),
    loop_paths=list(snakemake.input.loops),
    score_paths=list(snakemake.input.scores),
    stats_paths=list(snakemake.input.stats),
    model_dirs=list(snakemake.input.models),
    timings=dict(zip(snakemake.params.timing_jobs, snakemake.input.timings)),
    usage=dict(snakemake.params.usage),
    guard_paths=list(snakemake.input.guards),
    rejected_paths=list(snakemake.input.rejected),
    references=list(snakemake.params.references),
    md_path=snakemake.output.md,
    html_path=snakemake.output.html,
)
logging.info("report written: %s, %s", snakemake.output.md, snakemake.output.html)
