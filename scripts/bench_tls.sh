#!/usr/bin/env bash
# The cost of TLS (issue 5): connection rate with and without the TLS handshake, and the fan-out
# workload with and without TLS, in the same run, measured by rollcall-load (`handshakes`,
# `presence`, each with and without --tls).
#
# A throwaway certificate comes from scripts/make-cert.sh (EC P-256, the key type it makes).
# rollcall runs alone, pinned to core 0 with --threads 1, once plain and once with
# --tls-cert/--tls-key (a fresh server per row); rollcall-load runs pinned to core 1. Rows:
#
#   hs    handshakes: --connections N (2000; --quick 300) with 32 under way; each one is TCP
#         connect, [TLS handshake,] GET /healthz, close (no resumption: the server has none)
#   f1    presence: 1 room x 200 members at 10 Hz (2,000 updates/s, 400,000 deliveries/s)
#   f10   presence: 10 rooms x 50 members at 5 Hz (2,500 updates/s, 125,000 deliveries/s)
#
# Writes results/tls-<row>-<plain|tls>.json (+ .log), results/tls.md, and prints the table and
# the ratios TLS / plain.
#
# usage: scripts/bench_tls.sh [--quick] [--only hs,f1,f10] [--build-dir DIR] [--results DIR] [--nice N]
#   --quick   300 connections and 5 s windows after a 2 s warm-up; default 2000 and 25 s after 5 s
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=0
only=""
if [ "$(id -u)" = 0 ]; then niceness=-20; else niceness=0; fi
build=build
results=results
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --only) only=$2; shift ;;
    --build-dir) build=$2; shift ;;
    --results) results=$2; shift ;;
    --nice) niceness=$2; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench_tls.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$quick" = 1 ]; then duration=5; warmup=2; connections=300; else duration=25; warmup=5; connections=2000; fi

ulimit -n "$(ulimit -Hn)"
if [ "$(nproc)" -lt 2 ]; then echo "bench_tls.sh: needs 2 cores (server on core 0, load on core 1)" >&2; exit 2; fi
command -v curl >/dev/null || { echo "bench_tls.sh: needs curl" >&2; exit 2; }

echo "==> building $build (Release)" >&2
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target rollcall rollcall-load >&2
mkdir -p "$results"
tmp=$(mktemp -d)
scripts/make-cert.sh -o "$tmp/cert" >&2
{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r)"
  echo "compiler: $(c++ --version | head -1); mbedTLS $(grep -m1 'define MBEDTLS_VERSION_STRING ' /usr/include/mbedtls/version.h | cut -d'"' -f2)"
  echo "source: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' + uncommitted changes')"
  echo "certificate: $(openssl x509 -in "$tmp/cert/cert.pem" -noout -subject 2>/dev/null), $(openssl x509 -in "$tmp/cert/cert.pem" -noout -text 2>/dev/null | grep -m1 -E 'ASN1 OID|Public-Key' | sed 's/^ *//')"
  echo "windows: ${duration} s after ${warmup} s warm-up; ${connections} connections; nice ${niceness}; load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$results/tls_meta.txt"

free_port() {
  local p
  for p in $(seq 28100 28999); do
    if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then echo "$p"; return 0; fi
  done
  return 1
}

# See bench.sh: CMD pinned to CPU in its own session/autogroup with nice $niceness; $! is CMD's pid.
pinned() {
  local cpu=$1
  shift
  exec setsid -w sh -c '[ "$1" = 0 ] || echo "$1" >/proc/self/autogroup 2>/dev/null; shift; exec "$@"' \
    sh "$niceness" taskset -c "$cpu" "$@"
}

server_pid=""
data=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
  if [ -n "$data" ]; then rm -rf "$data"; data=""; fi
}
cleanup() { stop_server; rm -rf "$tmp"; }
trap cleanup EXIT

# run_one ROW plain|tls LOAD_MODE LOAD_ARGS...
run_one() {
  local row=$1 kind=$2 mode=$3
  shift 3
  local port out scheme=http tls_server=() tls_load=()
  out="$results/tls-$row-$kind"
  if [ "$kind" = tls ]; then
    scheme=https
    tls_server=(--tls-cert "$tmp/cert/cert.pem" --tls-key "$tmp/cert/key.pem")
    tls_load=(--tls)
  fi
  port=$(free_port) || { echo "bench_tls.sh: no free port" >&2; return 1; }
  data=$(mktemp -d)
  pinned 0 "$build/rollcall" --threads 1 --port "$port" --bind 127.0.0.1 --allow-anonymous \
    --room-capacity 1000 --data-dir "$data" --log-level warn "${tls_server[@]}" \
    >"$out.server.log" 2>&1 &
  server_pid=$!
  local up=0
  for _ in $(seq 1 100); do
    if curl -kfs "$scheme://127.0.0.1:$port/healthz" >/dev/null 2>&1; then up=1; break; fi
    sleep 0.1
  done
  if [ "$up" != 1 ]; then
    echo "bench_tls.sh: rollcall did not start (see $out.server.log)" >&2
    stop_server; return 1
  fi
  echo "==> $row $kind: $mode $*, port $port" >&2
  pinned 1 "$build/rollcall-load" "$mode" --port "$port" --server-pid "$server_pid" \
    "${tls_load[@]}" "$@" >"$out.json" 2>"$out.log" &
  wait $! || echo "bench_tls.sh: load failed for $row $kind" >&2
  tail -n 8 "$out.log" >&2
  stop_server
}

want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }
if want hs; then
  for kind in plain tls; do
    run_one hs "$kind" handshakes --connections "$connections" --concurrency 32
  done
fi
for f in "f1 1 200 10" "f10 10 50 5"; do
  read -r row rooms members rate <<<"$f"
  want "$row" || continue
  for kind in plain tls; do
    run_one "$row" "$kind" presence --rooms "$rooms" --members "$members" --rate "$rate" \
      --duration "$duration" --warmup "$warmup" --room-prefix "tls-$row"
  done
done

python3 - "$results" "$only" <<'EOF' | tee "$results/tls.md"
import json, os, sys
results, only = sys.argv[1], sys.argv[2]
want = lambda r: not only or r in only.split(",")
def load(row, kind):
    try:
        with open(os.path.join(results, f"tls-{row}-{kind}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
nan = float("nan")
def ratio(a, b): return a / b if b else nan
def cpu(r): return r["server"]["cpu_percent"] if r and r.get("server") else nan
if want("hs"):
    print("| connections | kind | completed | per second | latency p50 ms | p99 | max | TLS handshake p50 ms | server CPU % | server CPU ms per connection | load CPU % | failed | suite, server key |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for kind in ("plain", "tls"):
        r = load("hs", kind)
        if not r: print(f"| hs | {kind} | (no result) |"); continue
        t = f'{r["tls_handshake_ms"]["p50"]:.2f}' if r["tls_handshake_ms"] else "-"
        f = r["failed"]; failed = f'{f["connect"]}/{f["tls"]}/{f["http"]}/{f["timeout"]}'
        suite = f'{r["tls_suite"]}, {r["server_key"]}' if r["tls"] else "-"
        srv = r.get("server") or {}
        print(f'| {r["started"]} | {kind} | {r["completed"]} | {r["handshakes_per_s"]:.1f} | {r["latency_ms"]["p50"]:.2f} | '
              f'{r["latency_ms"]["p99"]:.2f} | {r["latency_ms"]["max"]:.2f} | {t} | {srv.get("cpu_percent", nan):.1f} | '
              f'{srv.get("cpu_ms_per_connection", nan):.3f} | {r["load_cpu_percent"]:.1f} | {failed} | {suite} |')
    print()
rows = [(row, label) for row, label in (("f1", "1 room x 200 @ 10 Hz"), ("f10", "10 rooms x 50 @ 5 Hz")) if want(row)]
if rows:
    print("| workload | kind | deliveries/s | frames/s | updates sent/s | p50 ms | p99 ms | max ms | server CPU % | RSS MiB | load CPU % | converged | closes/skipped/syncs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for row, label in rows:
        for kind in ("plain", "tls"):
            r = load(row, kind)
            if not r: print(f"| {label} | {kind} | (no result) |"); continue
            rss = r["server"]["rss_max_kib"] / 1024 if r.get("server") else nan
            notes = f'{r["closes"]["server"] + r["closes"]["eof"]}/{r["updates_skipped"]}/{r["unrequested_syncs"]}'
            print(f'| {label} | {kind} | {r["deliveries_per_s"]:.0f} | {r["frames_per_s"]:.0f} | {r["updates_sent_per_s"]:.0f} | '
                  f'{r["latency_ms"]["p50"]:.2f} | {r["latency_ms"]["p99"]:.2f} | {r["latency_ms"]["max"]:.2f} | {cpu(r):.1f} | '
                  f'{rss:.1f} | {r["load_cpu_percent"]:.1f} | {"yes" if r["convergence"]["ok"] else "NO"} | {notes} |')
    print()
print("Ratios TLS / plain, same run:")
print()
print("| what | connections/s | latency p50 | latency p99 | deliveries/s | server CPU | server CPU per delivery (or per connection) |")
print("|---|---:|---:|---:|---:|---:|---:|")
if want("hs"):
    p, t = load("hs", "plain"), load("hs", "tls")
    if p and t:
        per = lambda r: (r.get("server") or {}).get("cpu_ms_per_connection", nan)
        print(f'| handshakes | {ratio(t["handshakes_per_s"], p["handshakes_per_s"]):.3f} | {ratio(t["latency_ms"]["p50"], p["latency_ms"]["p50"]):.2f} | '
              f'{ratio(t["latency_ms"]["p99"], p["latency_ms"]["p99"]):.2f} | - | {ratio(cpu(t), cpu(p)):.2f} | {ratio(per(t), per(p)):.1f} |')
for row, label in rows:
    p, t = load(row, "plain"), load(row, "tls")
    if not p or not t: continue
    per = lambda r: cpu(r) / r["deliveries_per_s"] if r["deliveries_per_s"] else nan
    print(f'| {label} | - | {ratio(t["latency_ms"]["p50"], p["latency_ms"]["p50"]):.2f} | {ratio(t["latency_ms"]["p99"], p["latency_ms"]["p99"]):.2f} | '
          f'{ratio(t["deliveries_per_s"], p["deliveries_per_s"]):.3f} | {ratio(cpu(t), cpu(p)):.2f} | {ratio(per(t), per(p)):.2f} |')
EOF
