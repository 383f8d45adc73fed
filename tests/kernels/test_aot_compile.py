"""Every sketch and baseline compiles ahead of time for Hopper (sm_90), in its own process."""

import os
import subprocess
import sys

from paths import ROOT


def test_everything_compiles_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    script = ROOT / "tests" / "aot_compile_all.py"
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "0 failed" in proc.stdout
