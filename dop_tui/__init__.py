"""dop-tui: auto-tuning of SGMV multi-LoRA kernels in Triton (after Dop, AAAI 2025)."""

__version__ = "0.1.0"
