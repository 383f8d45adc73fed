"""Triton kernels of the SGMV sketches and baselines, one operator family per file.

Every module exposes ``bind_*(ops: Operands, config: Mapping[str, int]) -> Callable[[], None]``: it checks
the config, allocates any workspace and returns a closure that launches the kernel(s) for ``ops``. The
closure does no allocation and no host synchronisation, so it can be captured in a CUDA graph.
"""
