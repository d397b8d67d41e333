"""A tiny model directory for training tests (imported by test modules; pytest puts tests/ on sys.path)."""
from __future__ import annotations

from pathlib import Path

from culturalign.train.tiny import build_tiny

TEXTS = [
    "中国的首都是北京。长城是中国古代的军事防御工程，全长两万多千米。",
    "春节是中国最重要的传统节日，人们会贴春联、吃饺子、放鞭炮。",
    "The quick brown fox jumps over the lazy dog. Hello, how are you?",
    "请介绍一下中国的四大发明：造纸术、印刷术、火药和指南针。",
] * 25


def make_tiny(path: Path, **overrides) -> str:
    """Build (once per path) a tiny Llama model + tokenizer; returns the directory as a string."""
    if not (path / "config.json").is_file():
        options = dict(vocab_size=600, hidden_size=32, layers=2, heads=2, intermediate_size=64,
                       max_position_embeddings=256, seed=0) | overrides
        build_tiny(str(path), TEXTS, **options)
    return str(path)
