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

. scripts/bench_lib.sh
bench_timed_args "$@"
bench_windows
if [ "$quick" = 1 ]; then connections=300; else connections=2000; fi

bench_check_host
bench_build rollcall rollcall-load
mkdir -p "$results"
tmp=$(mktemp -d)
scripts/make-cert.sh -o "$tmp/cert" >&2
{
  bench_meta_head "; mbedTLS $(grep -m1 'define MBEDTLS_VERSION_STRING ' /usr/include/mbedtls/version.h | cut -d'"' -f2)"
  echo "certificate: $(openssl x509 -in "$tmp/cert/cert.pem" -noout -subject 2>/dev/null), $(openssl x509 -in "$tmp/cert/cert.pem" -noout -text 2>/dev/null | grep -m1 -E 'ASN1 OID|Public-Key' | sed 's/^ *//')"
  echo "windows: ${duration} s after ${warmup} s warm-up; ${connections} connections; nice ${niceness}; load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$results/tls_meta.txt"

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
  server_up "$scheme://127.0.0.1:$port/healthz" rollcall "$out.server.log" || return 1
  echo "==> $row $kind: $mode $*, port $port" >&2
  run_load "$out" 8 "$row $kind" "$mode" --port "$port" "${tls_load[@]}" "$@"
  stop_server
}

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
