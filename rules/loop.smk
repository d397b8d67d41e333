# The loops' decisions: per round, whether its score meets the stage's target, and the selected model
# (culturalign/loop/decisions.py, the one place a pass is decided). Only this rule reads the targets, so changing
# a target reruns the summaries and what depends on them, never a score or a generation.


rule loop_summary:
    input:
        unpack(loop_summary_inputs),
    output:
        report("results/loop/{stage}.json", category="Loop"),
    params:
        target=lambda wc: config["loop"][wc.stage]["target"],
        guard=wf.loop_guard(config),
        max_failed=config["judge"]["max_failed"],
    log:
        "logs/loop_summary/{stage}.log",
    benchmark:
        "benchmarks/loop_summary/{stage}.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/loop/loop_summary.py"
