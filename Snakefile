# culturalign: adapt an English-first LLM to a cultural context (arXiv 2406.18192). See README.md.
# Rule files, in the order data flows: rules/common.smk (config checks, input functions) first.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/loop.smk"
include: "rules/report.smk"


rule all:
    input:
        # Known before any checkpoint has run, so --keep-going still builds them when a training round fails.
        expand("results/data/{stage}/train.parquet", stage=wf.STAGES),
        expand("results/scores/base/{evalset}.json", evalset=("knowledge", "safety")),
        ["results/scores/base/guard.json"] if config["eval"]["guard"] else [],
        expand("results/loop/{stage}.json", stage=wf.STAGES),
        "results/report/report.md",
        "results/report/report.html",
    default_target: True
