"""Report stage: loop summaries, score files, data stats and training logs in, `results/report/report.md` and
`report.html` out: base vs KG vs SAFE in the shapes of the paper's Tables 2-4, per-round curves, costs."""
