# Training: full-parameter instruction tuning (transformers Trainer + DeepSpeed ZeRO-1), one round a job; a
# safety round with a dpo/orpo remedy aligns on preference pairs with TRL (same launch path and resources).


rule build_tiny:
    input:
        corpus=config["tiny"]["corpus"],
    output:
        directory("results/models/tiny"),
    params:
        tiny=config["tiny"],
    log:
        "logs/build_tiny/build_tiny.log",
    benchmark:
        "benchmarks/build_tiny/build_tiny.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train/build_tiny.py"


rule train:
    input:
        unpack(train_inputs),
    output:
        directory("results/models/{model}"),
    wildcard_constraints:
        model=r"(kg|safe)_r\d+",
    params:
        train=config["train"],
        epochs=lambda wc: config["loop"][wf.stage_of(wc.model)]["epochs_per_round"],
        # the remedy entry only (None: a plain round), so that rewording a reason retrains nothing
        remedy=lambda wc: remedy_of(wc.model)["settings"],
        workdir=lambda wc: f"results/models/.work/{wc.model}",
    resources:
        **wf.train_resources(config),
    threads: workflow.cores
    log:
        "logs/train/{model}.log",
    benchmark:
        "benchmarks/train/{model}.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train/train.py"
