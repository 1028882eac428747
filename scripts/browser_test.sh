#!/usr/bin/env bash
# Runs the browser tests (tests/browser): the classroom page served by the real
# server, driven in Debian's headless Chromium by playwright-core under Node's
# test runner, plus the SDK's unit tests. Installs what it needs first: the
# Debian packages chromium and fonts-noto-color-emoji (and nodejs/npm if there
# is no node), and playwright-core as pinned in tests/browser/package-lock.json.
#
#   scripts/browser_test.sh [--binary PATH]    (or ROLLCALL_BINARY=PATH)
#
# The binary defaults to build/rollcall; it is (re)built first when it lives in
# a CMake build directory, so the page it serves is the one in web/.
# Screenshots and server data go to a temporary folder printed at the end.
# Prints "browser: N passed, M failed" last; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

binary=${ROLLCALL_BINARY:-build/rollcall}
if [ "${1:-}" = "--binary" ] && [ -n "${2:-}" ]; then binary=$2; fi

fail() {
  echo "browser_test: $*" >&2
  echo "browser: 0 passed, 1 failed"
  exit 1
}

install_debs() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "browser_test: installing ${missing[*]}"
  local sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq &&
    $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The emoji font only makes screenshots show emoji as a person sees them.
install_debs chromium fonts-noto-color-emoji || fail "could not install chromium"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  install_debs nodejs npm || fail "could not install nodejs and npm"
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "playwright-core needs Node.js 20 or newer (found $(node --version))"

build_dir=$(dirname "$binary")
if [ -f "$build_dir/CMakeCache.txt" ]; then
  cmake --build "$build_dir" --target rollcall >/dev/null || fail "building $binary failed"
elif [ ! -x "$binary" ] && [ "$binary" = "build/rollcall" ]; then
  scripts/setup.sh || fail "setup failed"
  { cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null &&
    cmake --build build --target rollcall >/dev/null; } || fail "building build/rollcall failed"
fi
[ -x "$binary" ] || fail "no server binary at $binary"

(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed"

artifacts=$(mktemp -d "${TMPDIR:-/tmp}/rollcall-browser-XXXXXX")
tap="$artifacts/results.tap"
start=$(date +%s)
ROLLCALL_BINARY=$(realpath "$binary") ROLLCALL_ARTIFACTS="$artifacts" \
  timeout 900 node --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  tests/browser/*.test.mjs
status=$?

passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)
passed=${passed:-0}
failed=${failed:-0}
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi  # the runner itself failed
echo "browser_test: $(($(date +%s) - start)) s; screenshots and server logs in $artifacts"
[ -f "$artifacts/classroom.png" ] && echo "browser_test: screenshot $artifacts/classroom.png"
echo "browser: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
