# Evaluation: generate answers once per model and benchmark, then score them with the configured judge.
# The score rules are checkpoints: the loops (rules/loop.smk) decide the next round from their output.

BENCHMARK_SETS = {
    "knowledge": lambda: [config["eval"]["knowledge"]],
    "mcq": lambda: [config["eval"]["safety"]["mcq"]],
    "risky": lambda: config["eval"]["safety"]["risky"],
}


wildcard_constraints:
    benchmark="knowledge|mcq|risky",


rule generate:
    input:
        model=lambda wc: wf.model_path(config, wc.model),
        sets=lambda wc: [s["path"] for s in BENCHMARK_SETS[wc.benchmark]()],
    output:
        "results/generations/{model}/{benchmark}.parquet",
    params:
        sets=lambda wc: BENCHMARK_SETS[wc.benchmark](),
        generation=config["generation"],
        categories=config["eval"]["categories"],
    log:
        "logs/generate/{model}/{benchmark}.log",
    benchmark:
        "benchmarks/generate/{model}/{benchmark}.tsv"
    conda:
        "../envs/eval.yaml"
    script:
        "../scripts/generate.py"


checkpoint score_knowledge:
    input:
        generations="results/generations/{model}/knowledge.parquet",
    output:
        report("results/scores/{model}/knowledge.json", category="Scores", subcategory="{model}"),
    params:
        model=lambda wc: wc.model,
        eval=config["eval"]["knowledge"],
        judge=wf.judge(config, config["eval"]["knowledge"]["judge"]),
        llm_cache=config["llm_cache"],
        usage="results/llm/score_knowledge/{model}.json",
    log:
        "logs/score_knowledge/{model}.log",
    benchmark:
        "benchmarks/score_knowledge/{model}.tsv"
    conda:
        "../envs/eval.yaml"
    script:
        "../scripts/score_knowledge.py"


def safety_score_inputs(wc):
    mcq = config["eval"]["safety"]["mcq"]
    inputs = {
        "mcq": f"results/generations/{wc.model}/mcq.parquet",
        "risky": f"results/generations/{wc.model}/risky.parquet",
    }
    if mcq.get("answer_key"):
        inputs["answer_key"] = mcq["answer_key"]
    return inputs


checkpoint score_safety:
    input:
        unpack(safety_score_inputs),
    output:
        report("results/scores/{model}/safety.json", category="Scores", subcategory="{model}"),
    params:
        model=lambda wc: wc.model,
        eval=config["eval"]["safety"],
        judge=wf.judge(config, config["eval"]["safety"]["judge"]),
        silver_judge=wf.judge(config, config["eval"]["safety"]["mcq"].get("silver_judge")),
        llm_cache=config["llm_cache"],
        usage="results/llm/score_safety/{model}.json",
    log:
        "logs/score_safety/{model}.log",
    benchmark:
        "benchmarks/score_safety/{model}.tsv"
    conda:
        "../envs/eval.yaml"
    script:
        "../scripts/score_safety.py"
