# Data stage: each source file -> cleaned parquet (+ every rejected row, + stats); sources -> training mix.


rule clean_source:
    input:
        unpack(clean_inputs),
    output:
        clean="results/data/{stage}/{source}/clean.parquet",
        rejected="results/data/{stage}/{source}/rejected.parquet",
        stats=report("results/data/{stage}/{source}/stats.json", category="Data", subcategory="{stage}"),
    params:
        name=lambda wc: wc.source,
        fmt=lambda wc: wf.source(config, wc.stage, wc.source).get("format"),
        clean=lambda wc: wf.clean_config(config, wc.stage, wc.source),
        eval_sets=wf.eval_sets(config),
        refine=config["refine"],
        refine_judge=wf.judge(config, config["refine"]["judge"]) if config["refine"]["enabled"] else None,
        llm_cache=config["llm_cache"],
        usage="results/llm/clean_source/{stage}/{source}.json",
        sample=lambda wc: wf.source(config, wc.stage, wc.source).get("sample"),
        english_judge=lambda wc: wf.judge(config, wf.clean_config(config, wc.stage, wc.source).get("english_context", {}).get("judge")),
        opinion_judge=lambda wc: wf.judge(config, wf.clean_config(config, wc.stage, wc.source).get("second_opinion", {}).get("judge")),
    log:
        "logs/clean_source/{stage}/{source}.log",
    benchmark:
        "benchmarks/clean_source/{stage}/{source}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/data/clean_source.py"


rule mix:
    input:
        mix_inputs,
    output:
        "results/data/{stage}/train.parquet",
    params:
        caps=lambda wc: {s["name"]: s.get("cap") for s in wf.sources(config, wc.stage)},
        seed=config["mix"]["seed"],
    log:
        "logs/mix/{stage}.log",
    benchmark:
        "benchmarks/mix/{stage}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/data/mix.py"


# On demand (not part of `all`): snakemake results/data/knowledge/demo_alpaca/review.csv
rule review_sheet:
    input:
        "results/data/{stage}/{source}/clean.parquet",
    output:
        "results/data/{stage}/{source}/review.csv",
    params:
        sample=config["review"]["sample"],
        seed=config["review"]["seed"],
        clean=lambda wc: wf.clean_config(config, wc.stage, wc.source),
    log:
        "logs/review_sheet/{stage}/{source}.log",
    benchmark:
        "benchmarks/review_sheet/{stage}/{source}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/data/review_sheet.py"
