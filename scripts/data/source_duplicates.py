"""Rule source_duplicates: every shard's compact state -> one decision per surviving row (kept, exact or
near duplicate, sampled out) over the whole source (culturalign.data.shards.find_duplicates)."""
from pathlib import Path

from culturalign.data.shards import find_duplicates, save_decisions
from culturalign.util import log_to

log_to(snakemake.log[0])
params = snakemake.params
decisions, note = find_duplicates([Path(p).parent for p in snakemake.input.state], params.clean, params.sample,
                                  params.name)
save_decisions(decisions, note, snakemake.output[0])
