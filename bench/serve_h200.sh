#!/usr/bin/env bash
# The serving benchmark on one GPU (issue 13): the Llama-2-7B decoder, rank 16 on all seven projections, every
# backend, plain and overlapped, and the package `dop export` writes from the bundled split-K fused session; one
# JSON per workload.
#   bash bench/serve_h200.sh [OUT_DIR]      (default bench/results/serve)
set -u
OUT=${1:-bench/results/serve}
PKG=${TMPDIR:-/tmp}/dop_serve_pkg
mkdir -p "$OUT"
export COLUMNS=200
python3 -m dop_tui.cli export sessions/h200-7b-fused.json.gz -o "$PKG" --force > "$OUT/export_log.txt" 2>&1 || exit 1
for wl in distinct skewed uniform identical; do
  sizes=8,16,32,64
  [ "$wl" = distinct ] && sizes=1,8,16,32,64,128
  python3 -m dop_tui.cli bench serve --model llama2-7b --rank 16 --ctx 512 --batch-sizes "$sizes" --workloads "$wl" \
    --backends "none,torch,vllm,vllm-tuned,sglang,punica,package:$PKG" --overlap --replays 10 \
    --json "$OUT/serve_7b_$wl.json" --force > "$OUT/serve_7b_${wl}_log.txt" 2>&1
  echo "$wl rc=$?"
  tail -3 "$OUT/serve_7b_${wl}_log.txt"
done
