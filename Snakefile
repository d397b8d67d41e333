# culturalign: adapt an English-first LLM to a cultural context (arXiv 2406.18192). See README.md.
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config.yaml"
validate(config, "config.schema.yaml")
# This checkout's culturalign package, for the Snakefile and for every job, also inside the per-rule
# conda environments of envs/ (`--sdm conda`), which install only third-party packages.
if workflow.basedir not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))
sys.path.insert(0, workflow.basedir)
import culturalign.workflow as wf

# A source's own `clean:` overrides must pass the same checks once merged over the global block.
wf.check_unique_sources(config)
for _stage in wf.STAGES:
    for _src in config["data"][_stage]:
        if _src["clean"]:
            validate(config | {"clean": wf.clean_config(config, _stage, _src["name"])}, "config.schema.yaml")

include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/loop.smk"
include: "rules/report.smk"


rule all:
    input:
        # Known before any checkpoint has run, so --keep-going still builds them when a training round fails.
        expand("results/data/{stage}/train.parquet", stage=wf.STAGES),
        expand("results/scores/base/{benchmark}.json", benchmark=("knowledge", "safety")),
        "results/loop/knowledge.json",
        "results/loop/safety.json",
        "results/report/report.md",
        "results/report/report.html",
    default_target: True
