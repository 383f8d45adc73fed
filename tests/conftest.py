"""Test session setup: kernels run in the Triton interpreter (set before anything imports triton)."""

import os

os.environ["TRITON_INTERPRET"] = "1"
