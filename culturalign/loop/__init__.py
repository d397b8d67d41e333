"""Loop stage: the score files of each round in, `results/loop/{knowledge,safety}.json` out: whether a round
passes its targets, the guard and the judge-failure limit, the remedy of each safety round and why, which model
is selected and what was traded; plus the config-to-paths helpers the rules use."""
