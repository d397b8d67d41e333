"""The plan printed before any compute: how big the job is, what it costs, and whether it fits.

Estimates, stated as such: training FLOPs use the usual 6 * parameters * tokens (forward + backward,
attention's sequence-quadratic term left out), GPU-hours assume a model FLOPs utilisation (MFU) on a
stated peak, and memory per GPU under ZeRO-1 counts bf16 weights and gradients on every GPU, the fp32
master weights and Adam moments sharded over the world size, plus a rough activation term.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from transformers import AutoConfig, AutoModelForCausalLM

H100_BF16_PEAK_TFLOPS = 989.0   # dense bf16, SXM
PLANNED_MFU = 0.40
GIB = 1024 ** 3


@dataclass
class Plan:
    parameters: int
    samples: int
    dropped: dict[str, int]
    truncated: int
    tokens_per_epoch: int
    trainable_tokens_per_epoch: int
    epochs: float
    packing: bool
    world_size: int
    per_device_batch: int             # samples per micro-batch, packed or not
    grad_accum: int
    samples_per_step: int             # per_device_batch x grad_accum x world_size
    steps_per_epoch: int
    optimizer_steps: int
    tokens_per_step: float            # mean over an epoch (packing changes padding, not this)
    micro_batch_max_tokens: int       # what the activation memory is sized for
    train_flops: float
    gpu_hours: float
    peak_tflops: float
    mfu: float
    zero_stage: int | None
    memory_per_gpu_gib: dict[str, float]

    def to_dict(self) -> dict:
        return asdict(self)

    def last_step_note(self) -> str:
        left = self.samples % self.samples_per_step
        return f" (the last one takes the remaining {left:,} samples)" if left else ""

    def describe(self) -> str:
        mem = self.memory_per_gpu_gib
        return "\n".join([
            "training plan",
            f"  parameters            {self.parameters:,}",
            f"  samples               {self.samples:,} kept, dropped {self.dropped or 'none'}, {self.truncated:,} truncated",
            f"  tokens / epoch        {self.tokens_per_epoch:,} ({self.trainable_tokens_per_epoch:,} trained on)",
            f"  epochs                {self.epochs:g}",
            f"  samples / step        {self.samples_per_step:,} = {self.per_device_batch} per micro-batch "
            f"({'packed, no padding' if self.packing else 'padded'}) x {self.grad_accum} accumulation "
            f"x {self.world_size} process(es)",
            f"  steps / epoch         {self.steps_per_epoch:,}{self.last_step_note()}",
            f"  optimizer steps       {self.optimizer_steps:,}",
            f"  tokens / step         ~{self.tokens_per_step:,.0f} (mean; a micro-batch holds up to "
            f"{self.micro_batch_max_tokens:,})",
            f"  training FLOPs        {self.train_flops:.3e} (6 * N * tokens)",
            f"  estimated GPU-hours   {self.gpu_hours:,.2f} at {self.mfu:.0%} MFU of {self.peak_tflops:g} TFLOPs "
            "(H100 bf16 dense)",
            f"  memory / GPU (ZeRO-{self.zero_stage if self.zero_stage is not None else '-'})  "
            f"{mem['total']:.2f} GiB = weights {mem['weights']:.2f} + grads {mem['gradients']:.2f}"
            f" + optimizer {mem['optimizer']:.2f} + activations ~{mem['activations']:.2f}",
        ])


def count_parameters(model_dir: str) -> int:
    """Parameters from the config alone (meta device: no weights read, no memory used)."""
    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def memory_per_gpu(parameters: int, config, *, world_size: int, zero_stage: int | None,
                   micro_batch_tokens: int, gradient_checkpointing: bool, bf16: bool) -> dict[str, float]:
    """GiB per GPU. Weights/grads in bf16 (fp32 when bf16 is off); Adam state 12 bytes/param (fp32 master,
    m, v; 8 when there is no separate master copy) sharded for ZeRO >= 1, gradients too for ZeRO >= 2,
    weights too for ZeRO-3."""
    width = 2 if bf16 else 4
    optimizer_bytes = 12 if bf16 else 8
    stage = zero_stage or 0
    shard = lambda n, from_stage: n / world_size if stage >= from_stage else n
    weights = shard(width * parameters, 3)
    gradients = shard(width * parameters, 2)
    optimizer = shard(optimizer_bytes * parameters, 1)
    hidden, layers = config.hidden_size, config.num_hidden_layers
    # Per token: with checkpointing each layer keeps its input, plus one layer recomputed in full
    # (~34 * hidden bytes, Korthikanti et al. 2022, flash/sdpa attention); without it every layer
    # keeps its full activations. Logits in bf16 + fp32 for the loss + their gradient.
    per_token = (layers * hidden * width + 34 * hidden) if gradient_checkpointing else layers * 34 * hidden
    per_token += config.vocab_size * (width + 4 + 4)
    activations = per_token * micro_batch_tokens
    parts = {"weights": weights, "gradients": gradients, "optimizer": optimizer, "activations": activations}
    parts = {k: v / GIB for k, v in parts.items()}
    parts["total"] = sum(parts.values())
    return {k: round(v, 3) for k, v in parts.items()}


def make_plan(*, model_dir: str, samples: list[dict], dropped: dict[str, int], truncated: int, epochs: float,
              packing: bool, world_size: int, per_device_batch: int, grad_accum: int, zero_stage: int | None,
              max_length: int, gradient_checkpointing: bool, bf16: bool, max_steps: int = -1,
              peak_tflops: float = H100_BF16_PEAK_TFLOPS, mfu: float = PLANNED_MFU) -> Plan:
    config = AutoConfig.from_pretrained(model_dir)
    parameters = count_parameters(model_dir)
    tokens = sum(len(s["input_ids"]) for s in samples)
    trainable = sum(sum(label != -100 for label in s["labels"]) for s in samples)
    samples_per_step = per_device_batch * grad_accum * world_size
    # ceil(ceil(n / (b * w)) / a) == ceil(n / (b * a * w)): the Trainer steps on a last partial
    # accumulation, so the count depends on the global batch only, not on how it is split.
    steps_per_epoch = -(-len(samples) // samples_per_step)
    steps = max_steps if max_steps > 0 else math.ceil(steps_per_epoch * epochs)
    epochs_run = steps / steps_per_epoch
    flops = 6.0 * parameters * tokens * epochs_run
    return Plan(
        parameters=parameters, samples=len(samples), dropped=dropped, truncated=truncated,
        tokens_per_epoch=tokens, trainable_tokens_per_epoch=trainable, epochs=round(epochs_run, 4),
        packing=packing, world_size=world_size, per_device_batch=per_device_batch, grad_accum=grad_accum,
        samples_per_step=samples_per_step, steps_per_epoch=steps_per_epoch, optimizer_steps=steps,
        tokens_per_step=round(tokens / steps_per_epoch, 1), micro_batch_max_tokens=per_device_batch * max_length,
        train_flops=flops,
        gpu_hours=flops / (mfu * peak_tflops * 1e12) / 3600, peak_tflops=peak_tflops, mfu=mfu,
        zero_stage=zero_stage,
        memory_per_gpu_gib=memory_per_gpu(
            parameters, config, world_size=world_size, zero_stage=zero_stage,
            micro_batch_tokens=per_device_batch * max_length, gradient_checkpointing=gradient_checkpointing,
            bf16=bf16),
    )
