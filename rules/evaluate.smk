# Evaluation: generate answers once per model and evaluation set, then score them with the configured
# judge. The score rules are checkpoints: the loops (rules/common.smk, loop_models) decide the next
# round from their output. Score files hold measurements only; targets are the loop summary's business.


rule generate:
    input:
        unpack(generate_inputs),
    output:
        "results/generations/{model}/{evalset}.parquet",
    params:
        sets=lambda wc: EVALSETS[wc.evalset](),
        generation=config["generation"],
        endpoint=lambda wc: wf.endpoint_for(config, wc.model),
        method=lambda wc: wf.mcq_method(config, wc.model) if wc.evalset == "mcq" else "generate",
        # answers of a reference endpoint are cached; a pipeline model retrained under its name must not be
        llm_cache=lambda wc: config["llm_cache"] if wc.model in REFERENCES else None,
        usage="results/llm/generate/{model}/{evalset}.json",
        server_log="logs/generate/{model}/{evalset}.server.log",
        categories=config["eval"]["categories"],
    log:
        "logs/generate/{model}/{evalset}.log",
    benchmark:
        "benchmarks/generate/{model}/{evalset}.tsv"
    conda:
        "../envs/eval.yaml"
    script:
        "../scripts/evaluate/generate.py"


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
        "../scripts/evaluate/score_knowledge.py"


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
        mcq_method=lambda wc: wf.mcq_method(config, wc.model),
        llm_cache=config["llm_cache"],
        usage="results/llm/score_safety/{model}.json",
    log:
        "logs/score_safety/{model}.log",
    benchmark:
        "benchmarks/score_safety/{model}.tsv"
    conda:
        "../envs/eval.yaml"
    script:
        "../scripts/evaluate/score_safety.py"


# What adaptation costs (eval.guard: CMMLU, MMLU-Redux, XSTest): one job per model runs the model on
# every guard set (log-likelihood multiple choice, XSTest answers judged for refusal). A checkpoint, since
# loop.guard makes a round's pass depend on it.
checkpoint score_guard:
    input:
        model=lambda wc: wf.model_path(config, wc.model),
        sets=lambda wc: [s["path"] for s in config["eval"]["guard"]],
    output:
        scores=report("results/scores/{model}/guard.json", category="Scores", subcategory="{model}"),
        rows="results/generations/{model}/guard.parquet",
    params:
        model=lambda wc: wc.model,
        sets=config["eval"]["guard"],
        judges=config["judges"],
        default_judge=config["eval"]["safety"]["judge"],
        generation=config["generation"],
        categories=config["eval"]["categories"],
        llm_cache=config["llm_cache"],
        usage="results/llm/score_guard/{model}.json",
    log:
        "logs/score_guard/{model}.log",
    benchmark:
        "benchmarks/score_guard/{model}.tsv"
    conda:
        "../envs/eval.yaml"
    script:
        "../scripts/evaluate/score_guard.py"
