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
        path=lambda wc: wf.source(config, wc.stage, wc.source)["path"],
        fmt=lambda wc: wf.source(config, wc.stage, wc.source).get("format"),
        columns=lambda wc: wf.source(config, wc.stage, wc.source).get("columns"),
        roles=lambda wc: wf.source(config, wc.stage, wc.source).get("roles"),
        clean=lambda wc: wf.clean_config(config, wc.stage, wc.source),
        batch_rows=lambda wc: wf.clean_config(config, wc.stage, wc.source)["batch_rows"],
        shard_size=lambda wc: wf.clean_config(config, wc.stage, wc.source)["shard_size"],
        shards=lambda wc: shard_count(wc.stage, wc.source),
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


# A source larger than clean.shard_size: one clean_shard job per shard (per-row filters, compact dedup
# state), one source_duplicates job over all shards' state, one filter_shard job per shard, then
# clean_source merges (culturalign/data/shards.py). Everything under shards/ is temporary.
rule clean_shard:
    input:
        unpack(shard_inputs),
    output:
        alive=temp("results/data/{stage}/{source}/shards/{shard}/alive.parquet"),
        rejected=temp("results/data/{stage}/{source}/shards/{shard}/rejected.parquet"),
        state=temp("results/data/{stage}/{source}/shards/{shard}/state.json"),
        sig=temp("results/data/{stage}/{source}/shards/{shard}/sig32.bin"),
        bands=temp("results/data/{stage}/{source}/shards/{shard}/bands.bin"),
        hashes=temp("results/data/{stage}/{source}/shards/{shard}/hashes.bin"),
        grams=temp("results/data/{stage}/{source}/shards/{shard}/grams.bin"),
    params:
        name=lambda wc: wc.source,
        path=lambda wc: wf.source(config, wc.stage, wc.source)["path"],
        fmt=lambda wc: wf.source(config, wc.stage, wc.source).get("format"),
        columns=lambda wc: wf.source(config, wc.stage, wc.source).get("columns"),
        roles=lambda wc: wf.source(config, wc.stage, wc.source).get("roles"),
        clean=lambda wc: wf.clean_config(config, wc.stage, wc.source),
        shards=lambda wc: shard_count(wc.stage, wc.source),
        eval_sets=wf.eval_sets(config),
    log:
        "logs/clean_shard/{stage}/{source}/{shard}.log",
    benchmark:
        "benchmarks/clean_shard/{stage}/{source}/{shard}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/data/clean_shard.py"


rule source_duplicates:
    input:
        unpack(shard_state_inputs),
    output:
        temp("results/data/{stage}/{source}/shards/decisions.npz"),
    params:
        name=lambda wc: wc.source,
        clean=lambda wc: wf.clean_config(config, wc.stage, wc.source),
        sample=lambda wc: wf.source(config, wc.stage, wc.source).get("sample"),
    log:
        "logs/source_duplicates/{stage}/{source}.log",
    benchmark:
        "benchmarks/source_duplicates/{stage}/{source}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/data/source_duplicates.py"


rule filter_shard:
    input:
        alive="results/data/{stage}/{source}/shards/{shard}/alive.parquet",
        decisions="results/data/{stage}/{source}/shards/decisions.npz",
    output:
        kept=temp("results/data/{stage}/{source}/shards/{shard}/kept.parquet"),
        duplicates=temp("results/data/{stage}/{source}/shards/{shard}/duplicates.parquet"),
    log:
        "logs/filter_shard/{stage}/{source}/{shard}.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/data/filter_shard.py"


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
