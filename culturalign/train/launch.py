"""Launching training: `torchrun --standalone` on one machine, one `torchrun` per node through `srun`
inside a SLURM allocation (the rule declares `resources: nodes=N, tasks=N, mpi="srun"` so the SLURM
executor does not wrap the job in its own srun), rendezvous on the allocation's first host.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from culturalign.train import trainer

log = logging.getLogger("culturalign.train.launch")

RDZV_PORT_BASE = 20000   # + job id mod 20000: two jobs sharing a head node do not collide
# Fail fast on a hung collective instead of burning the allocation (the timeout is TrainingArguments.ddp_timeout).
NCCL_ENV = {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "1", "NCCL_ASYNC_ERROR_HANDLING": "1"}


def head_node(env: Mapping[str, str]) -> str:
    """First host of the allocation: `scontrol show hostnames <nodelist> | head -1`. The Snakemake SLURM
    executor strips SLURM_JOB_NODELIST from the job's environment, so ask squeue when it is missing."""
    nodelist = env.get("SLURM_JOB_NODELIST") or subprocess.run(
        ["squeue", "-h", "-j", env["SLURM_JOB_ID"], "-o", "%N"], check=True, capture_output=True, text=True).stdout.strip()
    names = subprocess.run(["scontrol", "show", "hostnames", nodelist],
                           check=True, capture_output=True, text=True).stdout.split()
    return names[0]


def launch_command(nodes: int, nproc_per_node: int, args_json: str, env: Mapping[str, str],
                   rdzv_host: str | None = None, worker: str = "culturalign.train.trainer") -> list[str]:
    """The command that starts nodes x nproc_per_node training workers (the module `worker`: supervised
    rounds, or culturalign.train.preference). For nodes > 1 it must run inside a SLURM allocation; the
    rendezvous host is looked up with scontrol unless given."""
    torchrun = [sys.executable, "-m", "torch.distributed.run"]   # = `torchrun`, from this environment
    worker = ["-m", worker, "--args-json", args_json]
    if nodes <= 1:
        return [*torchrun, "--standalone", "--nproc-per-node", str(nproc_per_node), *worker]
    if "SLURM_JOB_ID" not in env:
        raise RuntimeError(f"train.nodes = {nodes} needs a SLURM allocation (run with --profile profiles/slurm); "
                           "SLURM_JOB_ID is not set")
    host = rdzv_host or head_node(env)
    port = env.get("MASTER_PORT", str(RDZV_PORT_BASE + int(env["SLURM_JOB_ID"]) % 20000))
    return [
        "srun", "--nodes", str(nodes), "--ntasks", str(nodes), "--ntasks-per-node", "1", "--kill-on-bad-exit=1",
        *torchrun, "--nnodes", str(nodes), "--nproc-per-node", str(nproc_per_node),
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{host}:{port}", "--rdzv-id", env["SLURM_JOB_ID"],
        *worker,
    ]


def run(command: list[str], log_path: str | None) -> None:
    """Run the workers with their output appended to the rule's log; raise with the log's tail on failure."""
    env = {**os.environ, **NCCL_ENV}
    env.setdefault("OMP_NUM_THREADS", "1")
    log.info("launch: %s", " ".join(command))
    if log_path is None:
        subprocess.run(command, env=env, check=True)
        return
    with open(log_path, "a", encoding="utf-8") as out:
        code = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = "".join(Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines(True)[-40:])
        raise RuntimeError(f"training failed (exit {code}); last lines of {log_path}:\n{tail}")


def train_model(*, model: str, data: str, output: str, workdir: str, train_cfg: dict, epochs: float,
                log_path: str | None = None, lora: dict | None = None) -> None:
    """Prepare (validate, tokenise, plan) here, then train on nodes x nproc_per_node workers (through
    LoRA adapters merged at the end when `lora` is given)."""
    args_json = trainer.prepare(model=model, data=data, output=output, workdir=workdir,
                                train_cfg=train_cfg, epochs=epochs, lora=lora)
    own = trainer.own_options(train_cfg)
    run(launch_command(own["nodes"], own["nproc_per_node"], args_json, os.environ), log_path)
    if not Path(output, "config.json").is_file():
        raise RuntimeError(f"training finished but {output} holds no model")
