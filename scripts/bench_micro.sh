#!/usr/bin/env bash
# Micro-benchmarks (bench/*_bench.cc, Google Benchmark): builds them (Release) and runs each,
# pinned to one core, with repetitions; writes results/micro/<bench>.json and prints the median
# CPU time of every benchmark as a markdown table. Each bench file carries its own same-run
# baseline (a plain copy or the unavoidable primitive), so figures read as ratios.
#
# usage: scripts/bench_micro.sh [--build-dir DIR] [--results DIR] [--repetitions N] [--core N] [BENCH...]
#   BENCH  e.g. message_bench json_bench (default: every bench/*_bench.cc)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=build
results=results
repetitions=7
core=1
benches=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift ;;
    --results) results=$2; shift ;;
    --repetitions) repetitions=$2; shift ;;
    --core) core=$2; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "bench_micro.sh: unknown argument $1" >&2; exit 2 ;;
    *) benches+=("$1") ;;
  esac
  shift
done
if [ ${#benches[@]} -eq 0 ]; then
  for f in bench/*_bench.cc; do benches+=("$(basename "$f" .cc)"); done
fi

echo "==> building ${benches[*]} in $build (Release)" >&2
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target "${benches[@]}" >&2
mkdir -p "$results/micro"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "source: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' + uncommitted changes')"
echo
echo "| benchmark | CPU time (median of $repetitions) | wall time |"
echo "|---|---:|---:|"
for b in "${benches[@]}"; do
  out="$results/micro/$b.json"
  taskset -c "$core" "$build/$b" --benchmark_repetitions="$repetitions" \
    --benchmark_report_aggregates_only=true --benchmark_out="$out" --benchmark_out_format=json >/dev/null
  python3 - "$out" "$b" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
for r in data["benchmarks"]:
    if r.get("aggregate_name") != "median":
        continue
    unit = r.get("time_unit", "ns")
    name = r["run_name"]
    print(f"| `{sys.argv[2]}` {name} | {r['cpu_time']:.4g} {unit} | {r['real_time']:.4g} {unit} |")
PY
done
