"""Data stage: training sources (JSON, JSONL, RefGPT, Safety-Prompts, HalluQA files) in, per stage and source
`results/data/{stage}/{source}/clean.parquet`, `rejected.parquet` (every dropped row with `drop_reason`) and
`stats.json`, then the stage's decontaminated training mix `results/data/{stage}/train.parquet` and review sheets."""
