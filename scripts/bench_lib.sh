# shellcheck shell=bash disable=SC2034  # the variables are the sourcing script's
# Shell helpers shared by the benchmark scripts (bench.sh, bench_chat.sh, bench_tls.sh,
# idle_rss.sh). Source it after `cd` to the repository root:
#
#   . scripts/bench_lib.sh
#
# It sets these variables, which the scripts may change (through the flags below or directly):
#   bench_name  the script's file name, the prefix of every message (e.g. "bench.sh: no free port")
#   build       the build directory (--build-dir; default build)
#   results     where results are written (--results; default results)
#   quick, only, niceness   --quick (0/1), --only (comma list, "" = all rows) and --nice
#               (autogroup nice value of the server and the load: -20 as root, else 0)
#   server_pid  the server under measurement ("" when none runs)
#   data        a directory stop_server removes with the server ("" when none)
#
# Servers and loads run in a session (and so a scheduler autogroup) of their own, pinned to a CPU:
# with autogroups (the default on Debian) a plain `nice` only ranks processes within one session.
# Not a script of its own: it defines functions and variables and runs nothing else.

bench_name=$(basename "$0")
build=build
results=results
quick=0
only=""
if [ "$(id -u)" = 0 ]; then niceness=-20; else niceness=0; fi
server_pid=""
data=""
bench_used=0

# bench_help: prints the calling script's header comment (its usage).
bench_help() { awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; }

# bench_arg ARGS...: takes --build-dir, --results and --help (exits); else refuses the argument.
bench_arg() {
  case "$1" in
    --build-dir) build=$2; bench_used=2 ;;
    --results) results=$2; bench_used=2 ;;
    -h|--help) bench_help; exit 0 ;;
    *) echo "$bench_name: unknown argument $1" >&2; exit 2 ;;
  esac
}

# bench_timed_arg ARGS...: bench_arg plus the flags of timed runs: --quick, --only, --nice.
# Sets bench_used to the number of words it took, for the caller's `shift "$bench_used"`.
bench_timed_arg() {
  bench_used=1
  case "$1" in
    --quick) quick=1 ;;
    --only) only=$2; bench_used=2 ;;
    --nice) niceness=$2; bench_used=2 ;;
    *) bench_arg "$@" ;;
  esac
}

# bench_timed_args ARGS...: parses a command line of bench_timed_arg flags only.
bench_timed_args() {
  while [ $# -gt 0 ]; do
    bench_timed_arg "$@"
    shift "$bench_used"
  done
}

# bench_windows: sets duration and warmup (seconds): 5 after 2 with --quick, else 25 after 5.
bench_windows() {
  if [ "$quick" = 1 ]; then duration=5; warmup=2; else duration=25; warmup=5; fi
}

# want ROW: whether --only selects ROW (every row without --only).
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

# bench_check_host: raises the fd limit; refuses to run without 2 cores or without curl.
bench_check_host() {
  ulimit -n "$(ulimit -Hn)"
  if [ "$(nproc)" -lt 2 ]; then
    echo "$bench_name: needs 2 cores (server on core 0, load on core 1)" >&2
    exit 2
  fi
  command -v curl >/dev/null || { echo "$bench_name: needs curl" >&2; exit 2; }
}

# bench_build TARGET...: configures $build as Release and builds the targets (output on stderr).
bench_build() {
  echo "==> building $build (Release)" >&2
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target "$@" >&2
}

# bench_meta_head [COMPILER_EXTRA]: the machine, compiler (+ COMPILER_EXTRA) and source lines.
bench_meta_head() {
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r)"
  echo "compiler: $(c++ --version | head -1)${1:-}"
  echo "source: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' + uncommitted changes')"
}

# free_port: prints a port nobody listens on. rollcall listens with SO_REUSEPORT, so a forgotten
# server on the same port would silently take half the connections: never share one.
free_port() {
  local p
  for p in $(seq 28100 28999); do
    if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then echo "$p"; return 0; fi
  done
  return 1
}

# pinned CPUS CMD... &: CMD on CPUS ("0", "1" or "0-1") in a session (and autogroup) of its own
# with nice $niceness. Only for background use: it execs all the way down, so $! is CMD's pid.
pinned() {
  local cpu=$1
  shift
  exec setsid -w sh -c '[ "$1" = 0 ] || echo "$1" >/proc/self/autogroup 2>/dev/null; shift; exec "$@"' \
    sh "$niceness" taskset -c "$cpu" "$@"
}

# wait_healthy URL: polls URL for up to 10 s (any certificate); fails if it never answered.
wait_healthy() {
  local _
  for _ in $(seq 1 100); do
    if curl -kfs "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

# stop_pid PID: TERM, up to 10 s to exit, then KILL; reaps it when it is this shell's child.
stop_pid() {
  local _
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}

# stop_server: stops $server_pid and removes $data (each when set); the scripts' EXIT trap.
stop_server() {
  stop_pid "$server_pid"
  server_pid=""
  if [ -n "$data" ]; then rm -rf "$data"; data=""; fi
}

# server_up URL WHAT LOG: waits for the server's URL; else says WHAT did not start and stops it.
server_up() {
  wait_healthy "$1" && return 0
  echo "$bench_name: $2 did not start (see $3)" >&2
  stop_server
  return 1
}

# run_load OUT TAIL LABEL ARGS...: rollcall-load ARGS pinned to core 1 with the server's pid,
# JSON to OUT.json and the summary to OUT.log, whose last TAIL lines it echoes to stderr.
run_load() {
  local out=$1 lines=$2 label=$3
  shift 3
  pinned 1 "$build/rollcall-load" "$@" --server-pid "$server_pid" >"$out.json" 2>"$out.log" &
  wait $! || echo "$bench_name: load failed for $label" >&2
  tail -n "$lines" "$out.log" >&2
}
