"""The open systems' host-side choices the baselines reproduce: vLLM's configs and lookup, its metadata, SGLang's
chunked batch layout. Kernel correctness is in ``test_kernels_interpret.py``."""

import json

import pytest
import torch
from paths import ROOT

from dop_tui.kernels import vllm_configs
from dop_tui.kernels.baselines_sglang import CHUNK, chunked_batch
from dop_tui.kernels.baselines_vllm import lora_meta
from dop_tui.kernels.vllm_tuned_h100 import TABLES

REFERENCE = ROOT / "bench" / "reference" / "h200_open_kernels.json"
TABLE = {"3": {"1": {"8": {"4096": {"16": {"block_m": 16, "split_k": 32}}},
                     "64": {"4096": {"16": {"block_m": 64, "split_k": 8}}, "11008": {"16": {"block_m": 32}}}}},
         "9": {"1": {"8": {"4096": {"16": {"block_m": 128}}}},
               "2": {"8": {"4096": {"16": {"block_m": 99}}}}}}  # fmt: skip


def test_lookup_takes_exact_keys_else_the_nearest_and_slices_exactly():
    assert vllm_configs.lookup(TABLE, 3, 1, 8, 4096, 16)["split_k"] == 32
    assert vllm_configs.lookup(TABLE, 2, 1, 30, 4096, 16)["block_m"] == 16  # max_loras 2 -> 3; m 30 -> 8
    assert vllm_configs.lookup(TABLE, 3, 1, 40, 4096, 64)["block_m"] == 64  # m 40 -> 64; n 64 -> 16
    assert vllm_configs.lookup(TABLE, 3, 1, 64, 8000, 16)["block_m"] == 32  # k 8000 -> 11008 (nearer than 4096)
    assert vllm_configs.lookup(TABLE, 6, 1, 8, 4096, 16)["block_m"] == 16  # a tie (3 and 9): the first key
    assert vllm_configs.lookup(TABLE, 9, 2, 8, 4096, 16)["block_m"] == 99
    assert vllm_configs.lookup(TABLE, 3, 2, 8, 4096, 16) is None  # slice count: exact or nothing
    assert vllm_configs.lookup({}, 3, 1, 8, 4096, 16) is None


def test_configs_fill_the_defaults_and_drop_unknown_keys():
    assert vllm_configs.shrink_config(None, 64) == vllm_configs.default_shrink(64)
    assert vllm_configs.default_shrink(200)["split_k"] == 8 and vllm_configs.default_shrink(127)["split_k"] == 64
    assert vllm_configs.default_expand(3)["block_n"] == 64 and vllm_configs.default_expand(1)["block_n"] == 128
    cfg = vllm_configs.shrink_config({"block_m": 16, "max_nreg": 128, "num_ctas": 1}, 8)
    assert cfg["block_m"] == 16 and cfg["group_size_m"] == 8 and "max_nreg" not in cfg
    assert vllm_configs.config_file_name("NVIDIA H200", "shrink") == "NVIDIA_H200_SHRINK.json"
    assert vllm_configs.config_file_name("NVIDIA H100 80GB HBM3", "expand", False) == (
        "NVIDIA_H100_80GB_HBM3_EXPAND_FALSE.json"
    )


def test_the_tuned_table_gives_every_reference_case_its_listed_configs():
    cases = json.loads(REFERENCE.read_text())["cases"]
    assert len(cases) == 51
    for c in cases:
        ml = c["segments"] + 1
        shrink = vllm_configs.lookup(TABLES["SHRINK"], ml, 1, c["T"], c["h_in"], c["rank"])
        expand = vllm_configs.lookup(TABLES["EXPAND_TRUE"], ml, 1, c["T"], c["rank"], c["h_out"])
        assert shrink == c["tuned_shrink"] and expand == c["tuned_expand"]


def test_vllm_metadata_sorts_tokens_by_adapter_with_a_trailing_empty_slot():
    order, ids, counts, start = lora_meta([2, 1, 3], torch.tensor([5, 0, 5], dtype=torch.int32), 6)
    assert ids.tolist() == [0, 5, -1] and counts.tolist() == [1, 5, 0] and start.tolist() == [0, 1, 6, 6]
    assert order.tolist() == [2, 0, 1, 3, 4, 5]  # stable: adapter 0's token, then adapter 5's in order
    assert all(t.dtype == torch.int32 for t in (order, ids, counts, start))


@pytest.mark.parametrize(
    ("lens", "adapters", "chunks"),
    [
        ([1, 1, 1], [0, 1, 2], [1, 1, 1]),
        ([40], [0], [16, 16, 8]),
        ([5, 20, 3], [1, 0, 1], [16, 4, 8]),  # adapter 0's run first, then adapter 1's two segments merged
    ],
)
def test_sglang_batch_sorts_by_adapter_and_cuts_runs_into_chunks(lens, adapters, chunks):
    offsets, widx, perm = chunked_batch(lens, adapters, torch.device("cpu"))
    assert [b - a for a, b in zip(offsets.tolist(), offsets.tolist()[1:], strict=False)] == chunks
    assert max(chunks) <= CHUNK and sorted(perm.tolist()) == list(range(sum(lens)))
    mapping = [a for a, n in zip(adapters, lens, strict=True) for _ in range(n)]
    tokens = perm.tolist()
    for c, w in enumerate(widx.tolist()):
        assert all(mapping[t] == w for t in tokens[offsets[c] : offsets[c + 1]])
    assert [mapping[t] for t in tokens] == sorted(mapping)  # tokens grouped by adapter


def test_vllm_metadata_is_computed_once_per_layout_and_copied_per_call():
    """Every rotated copy of a timing shares one segment layout: vLLM's metadata is computed once for it and
    each call gets tensors of its own (the copies rotate it as the reference timing did); an in-place change
    of the adapter ids computes it again."""
    import torch

    from dop_tui.kernels import baselines_vllm
    from dop_tui.kernels.baselines_vllm import layout_meta, lora_meta

    calls = []
    real = baselines_vllm.lora_meta
    baselines_vllm.lora_meta = lambda *a: calls.append(a) or real(*a)
    try:
        w = torch.tensor([2, 0, 2], dtype=torch.int32)
        indptr = torch.tensor([0, 1, 3, 4], dtype=torch.int32)
        first, second = layout_meta(indptr, w, 4, indptr=True), layout_meta(indptr, w, 4, indptr=True)
        assert len(calls) == 1
        assert all(torch.equal(a, b) and a.data_ptr() != b.data_ptr() for a, b in zip(first, second, strict=True))
        w[1] = 1  # an in-place change: a new version, computed again
        again = layout_meta(indptr, w, 4, indptr=True)
        assert len(calls) == 2
        assert all(torch.equal(a, b) for a, b in zip(again, lora_meta([1, 2, 1], w, 4), strict=True))
    finally:
        baselines_vllm.lora_meta = real
