#!/usr/bin/env bash
# Tuning runs on a GPU, one call of the device tool each (sessions 7-9, issue 12). Sessions and logs go to OUT.
#   bash bench/h200_tune_runs.sh dense-and-resume OUT   the dense expand ground truth, then more search on the
#                                                       rank-16 fused session until about 570 s have passed
#   bash bench/h200_tune_runs.sh resume OUT NAME S      more search on sessions/NAME.json.gz for S seconds (the time
#                                                       decides, not the budget), its baselines timed again first
#   bash bench/h200_tune_runs.sh job OUT NAME S         a new session OUT/NAME.json.gz from sessions/NAME.toml, S seconds
#   bash bench/h200_tune_runs.sh rejob OUT NAME S       more search on sessions/NAME.json.gz for S seconds under the job
#                                                       of sessions/NAME.toml (same scenarios; its sketches may differ)
#   bash bench/h200_tune_runs.sh ab OUT OLD [NEW]       bench/kernel_ab.py: the kernels in folder OLD (carried) against
#                                                       those in NEW (default: the working tree's) on the top-2 configs
#                                                       of the rank-16 and rank-64 fused, shrink, decode and prefill
#                                                       sessions (385 scenarios, about 3 minutes)
#   bash bench/h200_tune_runs.sh ablate OUT             bench/kernel_ablation.py --hot on the shrink session and the
#                                                       decode session's expand cases: launch, metadata round trip,
#                                                       the rest, and full and meta again with the operands in L2
#   bash bench/h200_tune_runs.sh ablate-expand OUT NAME [NAME ...]
#                                                       bench/kernel_ablation.py --hot on the expand/tile cases of
#                                                       sessions/NAME.json.gz (adds nodot and noload: the products
#                                                       and the v and B reads)
# On a machine with several GPUs, set CUDA_VISIBLE_DEVICES per step to run steps side by side.
set -u
STEP=$1
OUT=${2:-/tmp/out}
mkdir -p "$OUT"
export COLUMNS=120
START=$(date +%s)
dop() { python3 -m dop_tui.cli "$@"; }
case "$STEP" in
  dense-and-resume)
    dop tune --batch sessions/h200-dense-expand.toml -o "$OUT/h200-dense-expand.json.gz" --force \
      > "$OUT/dense_log.txt" 2>&1
    echo "dense rc=$? after $(( $(date +%s) - START )) s"; tail -4 "$OUT/dense_log.txt"
    LEFT=$(( 570 - ($(date +%s) - START) ))
    if [ "$LEFT" -gt 60 ]; then
      cp sessions/h200-7b-fused.json.gz "$OUT/h200-7b-fused.json.gz"
      dop tune --batch --resume "$OUT/h200-7b-fused.json.gz" --budget 5000 --time-limit "$LEFT" \
        > "$OUT/fused_resume_log.txt" 2>&1
      echo "resume rc=$? after $(( $(date +%s) - START )) s"; tail -12 "$OUT/fused_resume_log.txt"
    fi
    ;;
  resume)
    cp "sessions/$3.json.gz" "$OUT/$3.json.gz"
    dop tune --batch --resume "$OUT/$3.json.gz" --budget 100000 --time-limit "$4" --retime-baselines > "$OUT/$3_resume_log.txt" 2>&1
    echo "$3 resume rc=$? after $(( $(date +%s) - START )) s"; tail -12 "$OUT/$3_resume_log.txt"
    ;;
  job)
    dop tune --batch "sessions/$3.toml" -o "$OUT/$3.json.gz" --force --time-limit "$4" > "$OUT/$3_log.txt" 2>&1
    echo "$3 rc=$? after $(( $(date +%s) - START )) s"; tail -40 "$OUT/$3_log.txt"
    ;;
  rejob)
    cp "sessions/$3.json.gz" "$OUT/$3.json.gz"
    dop tune --batch "sessions/$3.toml" --resume "$OUT/$3.json.gz" --budget 100000 --time-limit "$4" \
      > "$OUT/$3_rejob_log.txt" 2>&1
    echo "$3 rejob rc=$? after $(( $(date +%s) - START )) s"; tail -12 "$OUT/$3_rejob_log.txt"
    ;;
  ab)
    python3 bench/kernel_ab.py "$3" --new "${4:-}" sessions/h200-7b-fused.json.gz sessions/h200-7b-fused-r64.json.gz \
      sessions/h200-7b-shrink.json.gz sessions/h200-7b-decode.json.gz sessions/h200-7b-prefill.json.gz --prefill \
      --workers 14 --out "$OUT/kernel_ab.json" \
      > "$OUT/kernel_ab.txt" 2>&1
    echo "ab rc=$? after $(( $(date +%s) - START )) s"; grep -v "^fused-\|^shrink-\|^expand-" "$OUT/kernel_ab.txt" | tail -20
    ;;
  ablate)
    python3 bench/kernel_ablation.py sessions/h200-7b-shrink.json.gz --hot --out "$OUT/ablation_shrink.json" \
      > "$OUT/ablation_shrink.txt" 2>&1
    echo "shrink ablation rc=$? after $(( $(date +%s) - START )) s"
    python3 bench/kernel_ablation.py sessions/h200-7b-decode.json.gz --sketches expand/ --hot \
      --out "$OUT/ablation_expand.json" > "$OUT/ablation_expand.txt" 2>&1
    echo "expand ablation rc=$? after $(( $(date +%s) - START )) s"; tail -n 5 "$OUT"/ablation_*.txt
    ;;
  ablate-expand)
    shift 2
    for NAME in "$@"; do
      python3 bench/kernel_ablation.py "sessions/$NAME.json.gz" --sketches expand/tile/ --hot \
        --out "$OUT/ablation_expand_$NAME.json" > "$OUT/ablation_expand_$NAME.txt" 2>&1
      echo "$NAME expand ablation rc=$? after $(( $(date +%s) - START )) s"; tail -n 14 "$OUT/ablation_expand_$NAME.txt"
    done
    ;;
  *) echo "unknown step $STEP"; exit 2 ;;
esac
