"""Rule filter_shard: one shard's survivors split by the source's decisions into kept rows and duplicates
(culturalign.data.shards.filter_shard)."""
from pathlib import Path

from culturalign.data.shards import filter_shard, load_decision
from culturalign.util import log_to

log_to(snakemake.log[0])
filter_shard(Path(snakemake.input.alive).parent, load_decision(snakemake.input.decisions, int(snakemake.wildcards.shard)))
