"""Loop stage: the score files of each round in, `results/loop/{knowledge,safety}.json` out: whether a round
passes its targets and the guard, which model is selected and why; plus the config-to-paths helpers the rules use."""
