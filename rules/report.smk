# Report: base vs selected KG vs selected SAFE in the paper's table shapes, curves, data and cost figures.


rule report:
    input:
        unpack(report_inputs),
    output:
        md="results/report/report.md",
        html=report("results/report/report.html", category="Report"),
    params:
        compared=lambda wc: compared_models(),
        references=list(REFERENCES),
        timing_jobs=lambda wc: list(timed_jobs()),
        usage=lambda wc: llm_usage(),
    log:
        "logs/report/report.log",
    benchmark:
        "benchmarks/report/report.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/report/report.py"
