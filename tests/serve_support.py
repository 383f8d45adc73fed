"""Packages for the serving benchmark's tests: a real export, and one that is wrong on purpose."""

from pathlib import Path

from paths import SESSIONS
from typer.testing import CliRunner

from dop_tui.cli import app


def export_package(tmp_path: Path) -> Path:
    """The H200 fused session exported as package ``serve_pkg`` into ``tmp_path / "pkg"``."""
    out = tmp_path / "pkg"
    res = CliRunner().invoke(app, ["export", str(SESSIONS / "h200-7b-fused.json.gz"), "-o", str(out), "--name",
                                   "serve_pkg"])  # fmt: skip
    assert res.exit_code == 0, res.output
    return out


def wrong_package(tmp_path: Path) -> Path:
    """A folder shaped like an export whose ``add_lora`` applies the next segment's adapter: plausible, and
    wrong."""
    fake = tmp_path / "fake"
    (fake / "wrong_lora").mkdir(parents=True)
    (fake / "wrong_lora" / "dispatch.py").write_text("")
    (fake / "wrong_lora" / "api.py").write_text("")
    (fake / "wrong_lora" / "__init__.py").write_text(
        "def add_lora(y, x, A, B, seg_indptr, weight_indices, scale, *, h_outs, max_seg_len):\n"
        "    r = B.shape[2]\n"
        "    for s, w in enumerate(((weight_indices.long() + 1) % A.shape[0]).tolist()):\n"
        "        lo, hi, off = int(seg_indptr[s]), int(seg_indptr[s + 1]), 0\n"
        "        for p, h in enumerate(h_outs):\n"
        "            t = x[lo:hi] @ A[w, p * r:(p + 1) * r].T\n"
        "            y[lo:hi, off:off + h] += scale * t @ B[w, off:off + h].T\n"
        "            off += h\n"
    )
    return fake
