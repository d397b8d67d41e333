"""Rule train: results/models/{model}/ from the previous model and the round's data: the stage's
train.parquet, a remedy's mix (replay, contrast) or the previous round's preference pairs (dpo, orpo)."""

from culturalign.train.launch import train_model
from culturalign.train.preference import train_preference
from culturalign.util import log_to

log_to(snakemake.log[0])
entry = snakemake.params.remedy or {}   # the loop.safety.remedies entry; {} for a plain round
train_cfg = dict(snakemake.params.train)
if entry.get("learning_rate"):
    train_cfg["learning_rate"] = entry["learning_rate"]
common = dict(model=snakemake.input.model, data=snakemake.input.data, output=snakemake.output[0],
              workdir=snakemake.params.workdir, train_cfg=train_cfg, epochs=entry.get("epochs") or snakemake.params.epochs,
              log_path=snakemake.log[0], lora=entry.get("lora"))
if entry.get("name") in ("dpo", "orpo"):
    train_preference(method=entry["name"], preference={"beta": entry["beta"]}, **common)
else:
    train_model(**common)
