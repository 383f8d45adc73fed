"""dop-tui: auto-tuning of SGMV multi-LoRA kernels in Triton (after Dop, AAAI 2025)."""

from pathlib import Path

__version__ = "0.1.0"

# In a source checkout the Triton sources sit in the top-level kernels/ folder; an installed wheel maps
# them to dop_tui/kernels. Extending the package path makes `dop_tui.kernels` resolve in both cases.
_checkout_kernels = Path(__file__).resolve().parent.parent / "kernels"
if not (Path(__file__).resolve().parent / "kernels").exists() and (_checkout_kernels / "__init__.py").exists():
    __path__.append(str(_checkout_kernels.parent))
