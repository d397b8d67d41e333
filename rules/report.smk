# Report: base vs selected KG vs selected SAFE in the paper's table shapes, curves, data and cost figures.


def compared_models():
    """The paper's three columns: base, the knowledge loop's pick, the safety loop's pick."""
    return {"base": "base", "kg": selected_model("knowledge"), "safe": selected_model("safety")}


def trained_models():
    return [m for stage in wf.STAGES for m in loop_models(stage) if m != "base" and wf.MODEL_RE.match(m)]


def report_inputs(wc):
    models = sorted(set(compared_models().values()))
    return {
        "loops": ["results/loop/knowledge.json", "results/loop/safety.json"],
        "scores": [f"results/scores/{m}/{b}.json" for m in models for b in ("knowledge", "safety")],
        "stats": [
            f"results/data/{stage}/{name}/stats.json" for stage in wf.STAGES for name in wf.source_names(config, stage)
        ],
        "models": [wf.model_path(config, m) for m in trained_models()],
    }


rule report:
    input:
        unpack(report_inputs),
    output:
        md="results/report/report.md",
        html=report("results/report/report.html", category="Report"),
    params:
        compared=lambda wc: compared_models(),
    log:
        "logs/report/report.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/report.py"
