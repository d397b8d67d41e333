"""culturalign: adapt an English-first LLM to a specific cultural context (arXiv 2406.18192)."""

__version__ = "0.1.0"
