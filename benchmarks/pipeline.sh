#!/usr/bin/env bash
# The README's real-data pipeline, end to end, with no hand choice: search on the inner split, export the best trial
# after re-evaluating the top few on more seeds, then train the export once per seed on the protocol's split.
#
#   bash benchmarks/pipeline.sh movielens movielens:../shared/data/movielens-100k results/pipeline/movielens
#   bash benchmarks/pipeline.sh taobao taobao:../shared/data/taobao-userbehavior-head84k results/pipeline/taobao
#
# Environment: TRIALS (48), WORKERS (2: two trials at a time, one core each), REEVAL (2 more seeds), TOP (3), SEEDS
# ("0 1 2"). Each step resumes: the study with --resume, the re-evaluations from OUT/reeval/, so a crash loses at most
# the runs in progress. OUT/times.txt gets each step's wall time; OUT/eval.json the per-seed evaluation NEs and their
# mean (`kunlun train --json`). Run one pipeline at a time on a 2-core machine: each search uses both cores.
set -euo pipefail
# the whole script is one compound command, read before it runs: an edit to this file during a run (the searches take
# half an hour) cannot shift what bash reads next
{
[ $# -eq 3 ] || { echo "usage: $0 SPACE DATA OUT" >&2; exit 2; }
space=$1 data=$2 out=$3
kunlun=${KUNLUN:-kunlun}
mkdir -p "$out"
step() {  # NAME CMD...: run and append its wall time
    local name=$1 start=$SECONDS
    shift
    "$@"
    echo "$name $((SECONDS - start)) s" >> "$out/times.txt"
}
resume=()
[ -f "$out/study/study.json" ] && resume=(--resume)
step search "$kunlun" search "$space" --data "$data" --trials "${TRIALS:-48}" --workers "${WORKERS:-2}" \
    --out "$out/study" --no-progress "${resume[@]}"
step export "$kunlun" export "$out/study" --pick best-ne --reeval "${REEVAL:-2}" --top "${TOP:-3}" --no-progress \
    -o "$out/chosen.yaml"
# shellcheck disable=SC2086  # SEEDS is a list
step eval "$kunlun" train "$out/chosen.yaml" --split eval --seeds ${SEEDS:-0 1 2} --json > "$out/eval.json.tmp"
mv "$out/eval.json.tmp" "$out/eval.json"
cat "$out/times.txt"
exit
}
