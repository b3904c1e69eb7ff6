#!/usr/bin/env bash
# One GPU lease of the scaling run (issue 17; README, "Search on a GPU machine"), resumable across leases:
# installs optuna from the wheelhouse (`make wheelhouse`, carried as .whl) with no index, unpacks the previous lease's
# study tar when it is carried back in .gpu-study/, runs `kunlun scaling gpu-scaling --price measured ARGS...` until
# KUNLUN_GPU_LIMIT seconds (default 300), then packs the folder of studies into ONE tar in $OUT.
#   bash benchmarks/gpu_search.sh --budgets 6.25e7,2.5e8,5e8,1e9,4e9 --trials 6 --repeats 3
set -u
OUT=${OUT:-results/gpu_out}
STUDY=results/gpu-scaling
TAR=gpu-scaling.tar.gz
mkdir -p "$OUT"
LOG="$OUT/log.txt"
export PYTHONUNBUFFERED=1
export KUNLUN_GDPA_AUTOTUNE=off  # autotuning every kernel key takes minutes (benchmarks/README.md)
export KUNLUN_HEARTBEAT=5,15     # a trial cut off by the time limit is retried 15 s into the next lease
# the image's pip belongs to another interpreter: `python -m pip` installs for the one that runs kunlun
python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  >>"$LOG" 2>&1 || { echo "wheelhouse install failed (make wheelhouse; carry .whl)" | tee -a "$LOG"; exit 1; }
export PYTHONPATH=/tmp/site
python -m pip install -q --no-deps --no-build-isolation . >>"$LOG" 2>&1 || { echo "package install failed"; exit 1; }
if [ -f ".gpu-study/$TAR" ]; then
  tar -xzf ".gpu-study/$TAR" && echo "resuming $(ls "$STUDY" | wc -l) entries of $STUDY" | tee -a "$LOG"
fi
echo "=== scaling $(date -u +%H:%M:%S)" | tee -a "$LOG"
timeout -k 15 --signal=INT "${KUNLUN_GPU_LIMIT:-300}" python -m kunlun.search.cli scaling gpu-scaling \
  --out "$STUDY" --price measured "$@" >"$OUT/scaling.json" 2>>"$LOG"
rc=$?
echo "=== scaling rc=$rc $(date -u +%H:%M:%S) (124: time limit, continued by the next lease)" | tee -a "$LOG"
tar -czf "$OUT/$TAR" "$STUDY" && ls -la "$OUT/$TAR" | tee -a "$LOG"
for f in scaling.json scaling.png; do [ -f "$STUDY/$f" ] && cp "$STUDY/$f" "$OUT/"; done
tail -n 8 "$LOG"
