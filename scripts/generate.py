"""Rule generate: a model's answers to one evaluation set -> results/generations/{model}/{evalset}.parquet.

params.sets: the set's evaluation files [{path, format, limit}] (the risky set may have
several: they are concatenated); params.generation: {max_new_tokens, batch_size, backend};
params.categories: the config's extra category mappings.
"""
import logging

import torch

from culturalign.evalsets import load_sets
from culturalign.generate import generate, with_items
from culturalign.io import write_parquet
from culturalign.util import log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
items = load_sets(snakemake.params.sets, snakemake.params.categories)
gen = snakemake.params.generation
answers = generate(snakemake.input.model, items, max_new_tokens=gen["max_new_tokens"],
                   batch_size=gen["batch_size"], backend=gen.get("backend", "auto"))
write_parquet(with_items(answers, items), snakemake.output[0])
logging.info("%d answers, %d generated tokens", answers.height, answers["answer_tokens"].sum())
