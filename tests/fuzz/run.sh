#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time over its checked-in corpus; ctest calls it
# (tests/CMakeLists.txt). New inputs the fuzzer finds go to a temporary folder, not into the
# source tree; a crash, a sanitizer report or a 500 is printed with its input and fails the test.
#
#   tests/fuzz/run.sh BINARY CORPUS_DIR [DICT]   STRATUS_FUZZ_SECONDS (default 60)
set -uo pipefail
bin=$1
corpus=$2
dict=${3:-}
seconds=${STRATUS_FUZZ_SECONDS:-60}
if [ ! -x "$bin" ]; then
  echo "fuzz: $bin is not built (make fuzz); skipped"
  exit 77
fi
work=$(mktemp -d /tmp/stratus-fuzz-run.XXXXXX)
trap 'rm -rf -- "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts" "$work/region"
export STRATUS_FUZZ_DIR="$work/region"
# leaks: the region is built once and kept for the whole run on purpose.
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -max_len=262144 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" ${dict:+-dict="$dict"} \
  "$work/corpus" "$corpus" \
  >"$work/log" 2>&1
rc=$?
tail -n 25 "$work/log"
found=$(find "$work/artifacts" -type f | head -n 5)
if [ $rc -ne 0 ] || [ -n "$found" ]; then
  echo "fuzz: FAILED (exit $rc); the log's crash report is above"
  for f in $found; do
    echo "--- input $(basename "$f") ($(stat -c %s "$f") bytes), first 400 bytes:"
    head -c 400 "$f" | cat -v
    echo
  done
  exit 1
fi
echo "fuzz: $(basename "$bin") ran ${seconds}s over $(ls "$corpus" | wc -l) seeds: no crash, no sanitizer report, no 500"
