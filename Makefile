# Two commands: `make demo` (set up, run the embedded demo end to end) and `make test` (set up, run the tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
CORES  ?= 2

.PHONY: setup demo test bench slurm-profile clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: on the dev/CI machines this takes the local CPU build instead of a multi-GB CUDA one.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	# DeepSpeed compiles its CPU communication op on first use (~3 min); do it once here, not inside a test.
	$(BIN)/python -c "from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder as B; B().load()" >/dev/null 2>&1
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

demo: setup
	$(BIN)/snakemake --cores $(CORES)
	@echo "Report: results/report/report.md (and report.html)"

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/data/clean.py
	$(BIN)/python bench/evaluate/generate.py
	$(BIN)/python bench/train/train_throughput.py --smoke

slurm-profile:
	bash profiles/install_slurm_profile.sh

clean:
	rm -rf results logs benchmarks .snakemake
