"""Data stage: training sources (JSON/JSONL, also compressed, Parquet, Arrow, save_to_disk folders, globs of shards)
in; per stage and source `results/data/{stage}/{source}/clean.parquet`, `rejected.parquet` (every dropped row with
`drop_reason`) and `stats.json` out, then the stage's decontaminated training mix `results/data/{stage}/train.parquet`,
review sheets, and a remedy round's training mix (the pairs of a preference round are built in culturalign.loop)."""
