# The evaluate-then-enhance loops (DESIGN.md diagram), built from the score checkpoints: asking for a
# score that does not exist yet schedules its evaluation; once it exists the loop decides whether the
# next round is needed. No Python loop runs training: the DAG grows one round at a time.
import culturalign.loop as loop_lib
from culturalign.io import read_json

SCORE_CHECKPOINT = {"knowledge": lambda: checkpoints.score_knowledge, "safety": lambda: checkpoints.score_safety}


def score_of(stage, model):
    return read_json(SCORE_CHECKPOINT[stage]().get(model=model).output[0])


def loop_models(stage):
    cfg = config["loop"][stage]
    start = "base" if stage == "knowledge" else selected_model("knowledge")
    return loop_lib.walk(start, wf.PREFIX[stage], cfg["max_rounds"], cfg["target"], lambda m: score_of(stage, m))


def selected_model(stage):
    scores = [score_of(stage, m) for m in loop_models(stage)]
    return loop_lib.summarize(scores, config["loop"][stage]["target"])["selected"]


rule loop_summary:
    input:
        lambda wc: [f"results/scores/{m}/{wc.stage}.json" for m in loop_models(wc.stage)],
    output:
        report("results/loop/{stage}.json", category="Loop"),
    params:
        target=lambda wc: config["loop"][wc.stage]["target"],
    log:
        "logs/loop_summary/{stage}.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/loop_summary.py"
