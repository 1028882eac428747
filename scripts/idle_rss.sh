#!/usr/bin/env bash
# Server memory per idle WebSocket session, for rollcall (--threads 1) and for the baseline.
#
# Starts the server, reads its VmRSS, opens N idle sessions with `rollcall-load idle` (two
# loads of N/2, each over 100 rooms and several loopback source addresses), waits until all
# are open and the joins have settled, reads VmRSS again and prints (after - before) / N bytes
# per session, and the marginal cost of the second half. VmRSS is user-space memory: socket
# buffers in the kernel are not in it.
# Writes results/idle_rss.json. The goal (issue 3): under 1 KiB per idle session.
#
# usage: scripts/idle_rss.sh [--connections N] [--sources K] [--build-dir DIR] [--results DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

. scripts/bench_lib.sh
connections=10000
sources=4
rooms=100
settle_s=5  # the shard gives a join storm's transient memory back within ~3 s
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) connections=$2; shift 2 ;;
    --sources) sources=$2; shift 2 ;;
    *) bench_arg "$@"; shift "$bench_used" ;;
  esac
done
per_room=$(( (connections / 2 + rooms) / rooms ))

ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((connections + 100)) ]; then
  echo "idle_rss.sh: ulimit -n is $(ulimit -n); $connections sessions need more" >&2
  exit 2
fi

bench_build rollcall rollcall-load rollcall-baseline
mkdir -p "$results"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

load_pid=""
cleanup() {
  local p
  for p in $load_pid; do stop_pid "$p"; done
  load_pid=""
  stop_server
}
trap cleanup EXIT

# start_load PREFIX COUNT PORT LOG: opens COUNT idle sessions in rooms PREFIX-0..; prints the pid.
start_load() {
  "$build/rollcall-load" idle --port "$3" --connections "$2" --rooms "$rooms" --room-prefix "$1" \
    --sources "$sources" --ramp 5000 --duration 600 --connect-timeout 120 >/dev/null 2>"$4" &
  echo $!
}

# wait_open LOG PID: until the load says all (or only some) of its sessions are open; prints how many.
wait_open() {
  for _ in $(seq 1 1300); do
    grep -Eq "all [0-9]+ sessions open|only [0-9]+ of" "$1" && break
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  grep -Eo "all [0-9]+ sessions open|only [0-9]+ of" "$1" | grep -Eo "[0-9]+" | head -1
}

# measure SERVER -> "BEFORE_KIB MID_KIB AFTER_KIB OPEN BYTES_PER_SESSION MARGINAL_BYTES"
# Half the sessions are opened first, then the other half: (after - before) / N is the
# figure asked for; (after - mid) / (N/2) leaves out what does not grow with the count
# (pools filled by the join storm, allocator arenas).
measure() {
  local server=$1 port log_a log_b
  port=$(free_port)
  data=$(mktemp -d)
  log_a=$(mktemp)
  log_b=$(mktemp)
  if [ "$server" = rollcall ]; then
    "$build/rollcall" --threads 1 --port "$port" --bind 127.0.0.1 --allow-anonymous \
      --room-capacity "$per_room" --data-dir "$data" --log-level warn >/dev/null 2>&1 &
  else
    "$build/rollcall-baseline" --port "$port" --bind 127.0.0.1 >/dev/null 2>&1 &
  fi
  server_pid=$!
  wait_healthy "http://127.0.0.1:$port/healthz" || true
  sleep 1
  local half=$((connections / 2)) before mid after open_a open_b pid_a pid_b
  before=$(rss_kib "$server_pid")
  pid_a=$(start_load idleA "$half" "$port" "$log_a")
  load_pid=$pid_a
  open_a=$(wait_open "$log_a" "$pid_a")
  sleep "$settle_s"
  mid=$(rss_kib "$server_pid")
  pid_b=$(start_load idleB $((connections - half)) "$port" "$log_b")
  load_pid="$pid_a $pid_b"
  open_b=$(wait_open "$log_b" "$pid_b")
  sleep "$settle_s"
  after=$(rss_kib "$server_pid")
  cleanup
  rm -rf "$log_a" "$log_b"
  local open=$(( ${open_a:-0} + ${open_b:-0} ))
  [ "$open" -gt 0 ] || open=1
  echo "$before $mid $after $open $(( (after - before) * 1024 / open )) $(( (after - mid) * 1024 / ${open_b:-1} ))"
}

read -r r_before r_mid r_after r_open r_per r_marginal <<<"$(measure rollcall)"
read -r b_before b_mid b_after b_open b_per b_marginal <<<"$(measure baseline)"
cat >"$results/idle_rss.json" <<JSON
{"connections":$connections,"sources":$sources,"rooms_per_half":$rooms,
 "rollcall":{"open":$r_open,"rss_before_kib":$r_before,"rss_half_kib":$r_mid,"rss_after_kib":$r_after,"bytes_per_session":$r_per,"marginal_bytes_per_session":$r_marginal},
 "baseline":{"open":$b_open,"rss_before_kib":$b_before,"rss_half_kib":$b_mid,"rss_after_kib":$b_after,"bytes_per_session":$b_per,"marginal_bytes_per_session":$b_marginal}}
JSON
echo "| server | sessions open | VmRSS before KiB | at N/2 KiB | at N KiB | bytes per idle session (N) | marginal bytes (2nd half) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
echo "| rollcall | $r_open | $r_before | $r_mid | $r_after | $r_per | $r_marginal |"
echo "| baseline | $b_open | $b_before | $b_mid | $b_after | $b_per | $b_marginal |"
if [ "$r_per" -lt 1024 ]; then verdict=met; else verdict=MISSED; fi
echo
echo "- rollcall under 1 KiB per idle session: $verdict ($r_per bytes over all N; $r_marginal bytes marginal; baseline $b_per / $b_marginal)"
