"""Training stage: a base model (or the demo's tiny one) and `results/data/{stage}/train.parquet` in, a
full-parameter instruction-tuned round `results/models/{model}/` (save_pretrained + `trainer_log.jsonl`) out,
through the Hugging Face Trainer and DeepSpeed ZeRO, launched by torchrun locally or srun on SLURM."""
