"""Triton kernels of the SGMV sketches and baselines, one operator family per file.

Standalone: the files import only torch, triton and each other (relative imports), so an export ships them
as they are. Every launcher ``bind_*`` takes tensors and integers, one signature per op (shrink ``x, a, v,
seg_indptr, weight_indices``; expand ``v, b, y, seg_indptr, weight_indices, proj_offsets``; fused ``x, a, b, y,
seg_indptr, weight_indices, proj_offsets``; then keywords: ``h_outs``, ``scale``, ``accumulate``, fused's
``inter_dtype``, a sketch's ``max_seg_len`` and ``config``, a baseline's host ``seg_lens``). It checks the
config, allocates any workspace and returns a closure that launches the kernel(s). The closure does no
allocation and no host synchronisation, so it can be captured in a CUDA graph.
"""
