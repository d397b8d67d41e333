# The loops' decisions: per round, whether its score meets the stage's target, and the selected model
# (culturalign/loop/decisions.py, the one place a pass is decided). Only this rule reads the targets, so
# changing a target reruns the summaries and what depends on them, never a score or a generation.


rule loop_summary:
    input:
        unpack(loop_summary_inputs),
    output:
        report("results/loop/{stage}.json", category="Loop"),
    params:
        target=lambda wc: config["loop"][wc.stage]["target"],
        guard=wf.loop_guard(config),
        remedies=lambda wc: remedy_rounds() if wc.stage == "safety" else {},
        max_failed=config["judge"]["max_failed"],
    log:
        "logs/loop_summary/{stage}.log",
    benchmark:
        "benchmarks/loop_summary/{stage}.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/loop/loop_summary.py"


# Remedies of the safety loop (loop.safety.remedies; culturalign/loop/remedies.py). The round after one that
# broke the guard or missed the target trains on one of these files instead of the plain safety mix.
rule remedy_mix:
    input:
        unpack(remedy_mix_inputs),
    output:
        "results/data/safety/train_{model}.parquet",
    params:
        remedy=lambda wc: remedy_of(wc.model)["settings"],
    log:
        "logs/remedy_mix/{model}.log",
    benchmark:
        "benchmarks/remedy_mix/{model}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/loop/remedy_mix.py"


# A DPO/ORPO round learns from pairs built from the previous round's own answers to the safety mix's prompts
# (risky) and the contrast source's prompts (benign), judged by the safety judge.
rule preference_pairs:
    input:
        unpack(pairs_inputs),
    output:
        pairs="results/data/safety/pairs_{model}.parquet",
        unpaired="results/data/safety/pairs_{model}_unpaired.parquet",
        accounting="results/data/safety/pairs_{model}.json",
    params:
        model=lambda wc: wc.model,
        generation=config["generation"],
        judge=wf.judge(config, config["eval"]["safety"]["judge"]),
        llm_cache=config["llm_cache"],
        usage="results/llm/preference_pairs/{model}.json",
    log:
        "logs/preference_pairs/{model}.log",
    benchmark:
        "benchmarks/preference_pairs/{model}.tsv"
    conda:
        "../envs/eval.yaml"
    script:
        "../scripts/loop/pairs.py"
