# culturalign: adapt an English-first LLM to a cultural context (arXiv 2406.18192). See README.md.
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config.yaml"
validate(config, "config.schema.yaml")
# A source's own `clean:` overrides must pass the same checks once merged over the global block.
import culturalign.workflow as wf

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
        "results/loop/knowledge.json",
        "results/loop/safety.json",
        "results/report/report.md",
        "results/report/report.html",
    default_target: True
