#!/usr/bin/env bash
# The trace mode of the serving benchmark on one GPU (issue 13): Llama-2-7B, rank 16, 32 requests arriving at one
# per step on average, up to 32 running, the skewed workload; the package is `dop export` of the bundled decode
# (split-K fused) and prefill sessions.
#   bash bench/serve_trace_h200.sh [OUT_DIR]      (default bench/results/serve_trace)
set -u
OUT=${1:-bench/results/serve_trace}
PKG=${TMPDIR:-/tmp}/dop_trace_pkg
mkdir -p "$OUT"
export COLUMNS=160
python3 -m dop_tui.cli export sessions/h200-7b-fused.json.gz sessions/h200-7b-prefill.json.gz -o "$PKG" --force \
  > "$OUT/export_log.txt" 2>&1 || exit 1
python3 -m dop_tui.cli bench serve --model llama2-7b --rank 16 --ctx 512 --trace 32 --trace-rate 1.0 \
  --batch-sizes 32 --workloads skewed --backends "none,torch,vllm,vllm-tuned,sglang,package:$PKG" --replays 3 \
  --json "$OUT/trace_7b_skewed.json" --force > "$OUT/trace_7b_skewed_log.txt" 2>&1
echo "trace rc=$?"
tail -20 "$OUT/trace_7b_skewed_log.txt"
