#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for N seconds (default 60) on a scratch
# copy of its seed corpus (tests/fuzz/corpus/<name without _fuzz>/). Exits 1 if any target crashes.
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (FUZZ_BUILD_DIR=dir to build elsewhere than build-fuzz)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-60}
shift || true
build=${FUZZ_BUILD_DIR:-build-fuzz}
scripts/setup.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DROLLCALL_FUZZ=ON -DROLLCALL_TESTS=OFF -DROLLCALL_BENCH=OFF >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/*_fuzz.cc; do targets+=("$(basename "$f" .cc)"); done
fi
# Only the targets that will run are built (each links the whole server).
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
status=0
for t in "${targets[@]}"; do
  name=${t%_fuzz}
  scratch=$(mktemp -d)
  if [ -d "tests/fuzz/corpus/$name" ]; then cp -r "tests/fuzz/corpus/$name/." "$scratch/"; fi
  mkdir -p tests/fuzz/artifacts
  echo "==> $t for ${seconds}s"
  if ! "$build/$t" -max_total_time="$seconds" -artifact_prefix=tests/fuzz/artifacts/ "$scratch" 2>"$scratch.log"; then
    echo "CRASH in $t (see tests/fuzz/artifacts/):"
    tail -40 "$scratch.log"
    status=1
  else
    grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "$scratch.log" | tail -1 || true
  fi
  rm -rf "$scratch" "$scratch.log"
done
exit $status
