#!/usr/bin/env bash
# One lease of a GPU machine: install, then the named stages. Every stage is logged to $OUT/log.txt with its exit
# status and time limit, and a failing stage does not stop the next one (a lease is too short to rerun).
#   KUNLUN_BENCH_COMMIT=<sha> bash benchmarks/gpu_session.sh setup test-gpu matmul gdpa-pffn ...
# (the machine may get a stale .git, so the rows' commit is named by the caller). Stages and their limits are below;
# a 10-minute command fits about setup + test-gpu + matmul + one gdpa stage. `issue15` is issue 15's plan in one
# command of at most 6 minutes (benchmarks/README.md): training steps with kernel autotuning off, the rows appended
# to $OUT/train_step.csv per model as they are measured, the most wanted first.
set -u
OUT=${OUT:-results/gpu_out}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
export PYTHONUNBUFFERED=1

stage() {  # name, time limit in seconds, command...
  local name=$1 limit=$2
  shift 2
  echo "=== $name (limit ${limit}s) $(date -u +%H:%M:%S)" | tee -a "$LOG"
  timeout "$limit" "$@" >>"$LOG" 2>&1
  local rc=$?
  echo "=== $name rc=$rc $(date -u +%H:%M:%S)" | tee -a "$LOG"
  tail -n 5 "$LOG"
}

steps() {  # stage name, limit, train_step.py arguments: one config per GDPA kernel key, no autotuning.
  # KUNLUN_STEPS_ARGS is appended (later flags win): the CPU test runs the plan with "--tiny --device cpu ...".
  local name=$1 limit=$2
  shift 2
  # shellcheck disable=SC2086
  stage "$name" "$limit" env KUNLUN_GDPA_AUTOTUNE=off python benchmarks/train_step.py --csv "$OUT/train_step.csv" "$@" \
    ${KUNLUN_STEPS_ARGS:-}
}

stages=()
for s in "$@"; do
  if [ "$s" = issue15 ]; then
    stages+=(setup steps-production-eager steps-presets-eager steps-production-graphs steps-presets-graphs)
  else
    stages+=("$s")
  fi
done

for s in "${stages[@]}"; do
  case $s in
    setup) stage setup 60 bash -c 'python -m pip install -q --no-deps --no-build-isolation . && nvidia-smi -L &&
             python -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())"' ;;
    test) stage test 300 python -m pytest tests/kernels -m "gpu or not gpu" -q -x --timeout 120 -p no:cacheprovider ;;
    test-gpu) stage test-gpu 240 python -m pytest tests/kernels tests/model -m gpu -q --timeout 120 -p no:cacheprovider ;;
    test-all) stage test-all 300 python -m pytest tests/kernels tests/model tests/benchmarks -m "gpu or not gpu" -q \
             --timeout 120 -p no:cacheprovider ;;
    matmul) stage matmul 120 python benchmarks/bench_matmul.py --sweep --csv "$OUT/kernels.csv" ;;
    gdpa-pffn) stage gdpa-pffn 240 python benchmarks/bench_gdpa.py --csv "$OUT/kernels.csv" --ops pffn ;;
    gdpa-hsp) stage gdpa-hsp 180 python benchmarks/bench_gdpa.py --csv "$OUT/kernels.csv" --ops hsp ;;
    gdpa-swa) stage gdpa-swa 300 python benchmarks/bench_gdpa.py --csv "$OUT/kernels.csv" --ops swa \
             --providers triton,flex,sdpa ;;
    gdpa-swa-ref) stage gdpa-swa-ref 300 python benchmarks/bench_gdpa.py --csv "$OUT/kernels.csv" --ops swa \
             --providers reference,compile ;;
    train) stage train 300 python benchmarks/train_step.py --csv "$OUT/train_step.csv" ;;
    train-fast) KUNLUN_GDPA_AUTOTUNE=off stage train-fast 300 python benchmarks/train_step.py --csv "$OUT/train_step.csv" ;;
    train-compile) stage train-compile 300 python benchmarks/train_step.py --modes compile --csv "$OUT/train_step.csv" ;;
    presets) stage presets 240 python benchmarks/train_step.py --models presets --csv "$OUT/train_step.csv" ;;
    # issue 15 (limits sum to 300 s after setup): MFU and the Kunlun/InterFormer ratio; the host fit; graphs
    steps-production-eager) steps steps-production-eager 90 --models production --modes eager ;;
    steps-presets-eager) steps steps-presets-eager 60 --models presets --modes eager ;;
    steps-production-graphs) steps steps-production-graphs 100 --models production --modes graphs ;;
    steps-presets-graphs) steps steps-presets-graphs 50 --models presets --modes graphs ;;
    *) echo "unknown stage $s" | tee -a "$LOG" ;;
  esac
done
