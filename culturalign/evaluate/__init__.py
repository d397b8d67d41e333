"""Evaluation stage: a model and the evaluation sets (A-Eval, CHiSafetyBench, the guard sets CMMLU, MMLU-Redux,
XSTest) in; generations, then measurements only: `results/scores/{model}/knowledge.json`, `safety.json` and
`guard.json`, judged by the configured judges (reference, keyword, hf, openai)."""
