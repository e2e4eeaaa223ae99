#!/usr/bin/env bash
# Fuzz led_cpp's GGUF validator (python/led_cpp/gguf_check/) for 10 minutes and
# print executions, corpus size and crashes.
#
#   tools/fuzz_gguf.sh [SECONDS] [WORKDIR]
#
# Uses atheris (coverage-guided) when it is importable, else the harness's own
# mutation fuzzer.  The corpus and crash inputs are kept in WORKDIR (default
# benchmarks/results/fuzz_gguf, git-ignored) so later runs continue from it.
# Exit status: 0 when no crash was found, 1 otherwise.
set -u -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
SECONDS_TO_RUN="${1:-600}"
WORK="${2:-$ROOT/benchmarks/results/fuzz_gguf}"
PY="${PYTHON:-python3}"
CORPUS="$WORK/corpus"
CRASHES="$WORK/crashes"
LOG="$WORK/fuzz.log"
mkdir -p "$CORPUS" "$CRASHES"

if "$PY" -c "import atheris" 2>/dev/null; then ENGINE=atheris; else ENGINE=simple; fi
corpus_before=$(find "$CORPUS" -type f | wc -l)
crashes_before=$(find "$CRASHES" -type f | wc -l)
echo "fuzzing gguf_check for ${SECONDS_TO_RUN} s with $ENGINE (log: $LOG)"

start=$(date +%s)
"$PY" "$ROOT/tests/support/fuzz_gguf_check.py" --engine "$ENGINE" --seconds "$SECONDS_TO_RUN" \
    --corpus "$CORPUS" --artifacts "$CRASHES" >"$LOG" 2>&1
status=$?
elapsed=$(( $(date +%s) - start ))

if [ "$ENGINE" = atheris ]; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$LOG" | tail -1)
    corpus_after=$(find "$CORPUS" -type f | wc -l)
else
    execs=$(sed -n 's/^executions: *//p' "$LOG" | tail -1)
    rate=$(sed -n 's/^exec_per_s: *//p' "$LOG" | tail -1)
    corpus_after=$(sed -n 's/^corpus: *//p' "$LOG" | tail -1)
fi
crashes_after=$(find "$CRASHES" -type f | wc -l)
new_crashes=$(( crashes_after - crashes_before ))

echo "engine:      $ENGINE"
echo "seconds:     $elapsed"
echo "executions:  ${execs:-unknown}"
echo "exec/s:      ${rate:-unknown}"
echo "corpus size: ${corpus_after:-unknown} (was $corpus_before)"
echo "crashes:     $new_crashes (files in $CRASHES: $crashes_after)"
if [ "$new_crashes" -gt 0 ] || [ "$status" -ne 0 ]; then
    echo "--- last lines of the log ---"
    tail -n 40 "$LOG"
    exit 1
fi
exit 0
