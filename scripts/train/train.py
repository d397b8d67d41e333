"""Rule train: results/models/{model}/ from the previous model and the stage's train.parquet."""

from culturalign.train.launch import train_model
from culturalign.util import log_to

log_to(snakemake.log[0])
train_model(
    model=snakemake.input.model,
    data=snakemake.input.data,
    output=snakemake.output[0],
    workdir=snakemake.params.workdir,
    train_cfg=dict(snakemake.params.train),
    epochs=snakemake.params.epochs,
    log_path=snakemake.log[0],
)
