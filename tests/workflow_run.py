"""Helpers for tests that run Snakemake on a copy of the workflow (imported by test modules)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

WORKFLOW_FILES = ("Snakefile", "config.yaml", "config.schema.yaml", "rules", "scripts", "envs", "demo", "profiles",
                  "examples")


def copy_workflow(repo_root: Path, dest: Path) -> Path:
    """A private copy, so a test can edit data files and config without touching the repository."""
    for name in WORKFLOW_FILES:
        src = repo_root / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


def snakemake(work: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=work,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def snakemake_fails(work: Path, *args: str) -> str:
    """Run Snakemake expecting it to stop with an error; its output."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=work,
                          capture_output=True, text=True)
    assert proc.returncode != 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def snapshot(work: Path) -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file of a work directory but Snakemake's own bookkeeping (.snakemake/)."""
    return {str(p.relative_to(work)): (p.stat().st_mtime_ns, p.stat().st_size) for p in work.rglob("*")
            if p.is_file() and ".snakemake" not in p.relative_to(work).parts}


def planned(work: Path, *args: str) -> dict[str, int]:
    """Jobs a dry run would run, from Snakemake's 'Job stats' table: {rule: count}."""
    out = snakemake(work, "-n", *args)
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def planned_outputs(work: Path, *args: str) -> list[str]:
    """Every output path of the jobs a dry run would run (checkpoint-dependent jobs appear once the
    checkpoints they wait for have run)."""
    out = snakemake(work, "-n", *args)
    return [path.strip() for line in re.findall(r"^\s+output: (.+)$", out, re.M) for path in line.split(",")]
