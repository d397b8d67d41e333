"""Rule generate: a model's answers to one evaluation set -> results/generations/{model}/{evalset}.parquet.

params.sets: the set's evaluation files [{path, format, limit}] (the risky set may have
several: they are concatenated); params.generation: the config's generation block; params.endpoint:
the OpenAI-compatible endpoint the model's answers come from (None: in-process or served, see
culturalign.evaluate.serve.generate_answers); params.categories: the config's extra category mappings.
A multiple-choice item is asked with its options and a request for the option letter
(culturalign.evaluate.prompts.mcq_question); the table keeps the item as written.
"""
import logging

import torch

from culturalign.evaluate.evalsets import load_sets
from culturalign.evaluate.generate import with_items
from culturalign.evaluate.guard import answer_mcq_by_loglik
from culturalign.evaluate.prompts import mcq_question
from culturalign.io import write_parquet
from culturalign.evaluate.serve import generate_answers
from culturalign.util import log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
items = load_sets(snakemake.params.sets, snakemake.params.categories)
params = snakemake.params
if params.method == "loglik":   # multiple choice by the option letter's log-likelihood (eval.safety.mcq.method)
    answers = answer_mcq_by_loglik(snakemake.input.model, items, batch_size=params.generation["batch_size"])
else:
    asked = [{**it, "question": mcq_question(it)} if it.get("options") else it for it in items]
    answers = generate_answers(snakemake.input.get("model"), asked, dict(params.generation),
                               endpoint=params.endpoint, cache_path=params.llm_cache, usage_path=params.usage,
                               log_path=params.server_log)
write_parquet(with_items(answers, items), snakemake.output[0])
logging.info("%d answers, %d generated tokens", answers.height, answers["answer_tokens"].sum())
