#!/usr/bin/env bash
# Sets up, builds and runs every test: unit tests (ctest), end-to-end tests
# against the real binary (pytest), the classroom page in headless Chromium,
# then the unit and end-to-end tests once more under AddressSanitizer +
# UndefinedBehaviorSanitizer. Prints "tests: N passed, M failed" last.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

scripts/setup.sh || { echo "tests: 0 passed, 1 failed"; exit 1; }
passed=0
failed=0
step() {  # step NAME COMMAND...
  local name=$1
  shift
  echo "==> $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED: $name"
  fi
}

jobs=$(nproc)
step "build (Release)" bash -c "cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j$jobs"
step "unit tests" ctest --test-dir build --output-on-failure -j"$jobs"
step "end-to-end tests" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e --binary build/rollcall
step "browser tests (headless Chromium)" scripts/browser_test.sh --binary build/rollcall
if [ "${ROLLCALL_SKIP_SANITIZERS:-0}" != "1" ]; then
  step "build (ASan+UBSan)" bash -c "cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DROLLCALL_SANITIZE=ON -DROLLCALL_BENCH=OFF >/dev/null && cmake --build build-asan -j$jobs"
  step "unit tests (ASan+UBSan)" env ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$jobs"
  step "end-to-end tests (ASan+UBSan binary)" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e --binary build-asan/rollcall
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
