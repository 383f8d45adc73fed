"""Domain code never imports textual; the space and scenario layers do not even need triton."""

import subprocess
import sys

from paths import ROOT


def _modules_after(stmt: str) -> set[str]:
    code = f"import sys; {stmt}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_domain_and_cli_do_not_import_textual():
    mods = _modules_after(
        "import dop_tui.scenario, dop_tui.workloads, dop_tui.models, dop_tui.space, dop_tui.operands, "
        "dop_tui.reference, dop_tui.measure.check, dop_tui.measure.roofline, dop_tui.cli, dop_tui.export.package"
    )
    assert "textual" not in mods


def test_space_does_not_load_triton():
    mods = _modules_after("import dop_tui.space, dop_tui.scenario, dop_tui.cli")
    assert "triton" not in mods and "textual" not in mods


def test_kernel_files_are_standalone():
    """kernels/ imports only torch, triton, the standard library and its siblings (relative imports): an
    export copies the files as they are."""
    import ast

    allowed = {"torch", "triton", "__future__", "collections", "typing", "os", "math", "dataclasses"}
    for path in (ROOT / "kernels").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = set() if node.level else {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"
