"""The per-rule conda environments (envs/*.yaml, for `snakemake --sdm conda`).

Creating them needs conda and the network, which this machine and CI lack, so these tests check what
can be checked offline: every script rule names an environment that exists, every pin equals
pyproject.toml's (the versions the suite runs with), and each rule's script imports with nothing
but its environment's packages available (a meta-path hook blocks the project's other dependencies).
"""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

# import name of each third-party distribution the project pins
IMPORT_NAME = {"torch": "torch", "transformers": "transformers", "accelerate": "accelerate", "deepspeed": "deepspeed",
               "tokenizers": "tokenizers", "polars": "polars", "pyarrow": "pyarrow", "openai": "openai",
               "opencc": "opencc", "tqdm": "tqdm", "matplotlib": "matplotlib", "pyyaml": "yaml"}
# what only pulls in others' dependencies or runs the workflow itself, never pinned in an env
NOT_IN_ENVS = {"snakemake", "snakemake-executor-plugin-slurm"}

BLOCKER = """
import re, sys
blocked = set(sys.argv[2].split(","))
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} is not in this rule's conda environment")
sys.meta_path.insert(0, Block())
for line in open(sys.argv[1], encoding="utf-8"):
    if re.match(r"(import|from) \\w", line) and "__future__" not in line:
        exec(line)
"""


def pins(requirements: list[str]) -> dict[str, str]:
    return dict(r.split("==") for r in requirements)


def rule_envs(repo_root: Path) -> dict[str, tuple[str | None, str]]:
    """{rule: (conda env path or None, script path)} for every rule with a `script:`."""
    found = {}
    for smk in sorted((repo_root / "rules").glob("*.smk")):
        for block in re.split(r"^(?=(?:rule|checkpoint) \w+:)", smk.read_text(), flags=re.M)[1:]:
            name = re.match(r"(?:rule|checkpoint) (\w+):", block).group(1)
            script = re.search(r'^    script:\n\s+"([^"]+)"', block, re.M)
            conda = re.search(r'^    conda:\n\s+"([^"]+)"', block, re.M)
            if script:
                found[name] = (conda and str((smk.parent / conda.group(1)).resolve()),
                               str((smk.parent / script.group(1)).resolve()))
    return found


def env_pins(path: str) -> dict[str, str]:
    env = yaml.safe_load(Path(path).read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return pins(pip)


@pytest.fixture(scope="module")
def project_pins(repo_root) -> dict[str, str]:
    return pins(tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"])


def test_every_script_rule_has_an_env(repo_root):
    envs = rule_envs(repo_root)
    assert len(envs) >= 10
    for rule, (conda, _) in envs.items():
        assert conda and Path(conda).is_file(), f"rule {rule}: no conda env"


def test_env_pins_equal_pyproject(repo_root, project_pins):
    for path in sorted((repo_root / "envs").glob("*.yaml")):
        for name, version in env_pins(str(path)).items():
            assert project_pins.get(name) == version, f"{path.name}: {name}=={version}, pyproject has {project_pins.get(name)}"
    used = set().union(*(env_pins(str(p)) for p in (repo_root / "envs").glob("*.yaml")))
    assert used == set(project_pins) - NOT_IN_ENVS


@pytest.mark.parametrize("rule", ["clean_source", "mix", "review_sheet", "build_tiny", "train", "generate",
                                  "score_knowledge", "score_safety", "score_guard", "loop_summary", "report"])
def test_script_imports_with_only_its_env(repo_root, project_pins, rule):
    conda, script = rule_envs(repo_root)[rule]
    available = set(env_pins(conda))
    blocked = {IMPORT_NAME[d] for d in project_pins if d in IMPORT_NAME and d not in available}
    proc = subprocess.run([sys.executable, "-c", BLOCKER, script, ",".join(sorted(blocked))],
                          capture_output=True, text=True, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr[-2000:]
