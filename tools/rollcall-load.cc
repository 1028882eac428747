// rollcall-load: whole-system load over loopback for rollcall and for the
// plain-broadcast baseline (tools/rollcall-baseline.cc), which it measures the
// same way. See BENCHMARKS.md for how the bench scripts use it.
//
//   rollcall-load presence --rooms R --members M --rate HZ --duration S ...
//   rollcall-load idle --connections N --rooms R --duration S ...
//
// The main thread parses the flags, starts the workers (tools/load/worker.h),
// moves them through the phases of tools/load/shared.h, samples the server
// process's CPU time and memory when given its pid, then merges the workers'
// counters into one JSON report (stdout) and a summary (stderr).
// Every run is bounded: by the connect timeout, the warm-up and the duration,
// and by fixed waits for the final sync and the close handshakes.

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "tools/load/worker.h"

namespace rc::load {
namespace {

constexpr std::uint32_t kSourcesMax = 250;              // 127.0.0.1 .. 127.0.0.250
constexpr std::uint64_t kSessionsPerSourceMax = 20000;  // of ~28k ephemeral ports
constexpr std::uint32_t kThreadsMax = 64;
constexpr std::uint64_t kFdsReserved = 64;               // epoll instances, stdio, /proc reads
constexpr std::uint64_t kModelEntriesMax = 64ull << 20;  // members tracked over all clients
constexpr std::int64_t kSettleWaitNs = 30'000'000'000;
constexpr std::int64_t kStepWaitNs = 5'000'000'000;

void add_common(CLI::App* cmd, Settings& s) {
  cmd->add_option("--host", s.host, "Server address (127.0.0.0/8 only)")->capture_default_str();
  cmd->add_option("--port", s.port, "Server port")->capture_default_str();
  cmd->add_option("--rooms", s.rooms, "Rooms")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  cmd->add_option("--duration", s.duration_s, "Seconds to measure (presence) or hold (idle)")
      ->check(CLI::Range(0.5, 3600.0))
      ->capture_default_str();
  cmd->add_option("--sources", s.sources, "Source addresses 127.0.0.1..127.0.0.N")
      ->check(CLI::Range(1u, kSourcesMax))
      ->capture_default_str();
  cmd->add_option("--ramp", s.ramp_per_s, "Connections opened per second")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--threads", s.threads, "Client threads")
      ->check(CLI::Range(1u, kThreadsMax))
      ->capture_default_str();
  cmd->add_option("--room-prefix", s.room_prefix, "Rooms are named PREFIX-0, PREFIX-1, ...")
      ->capture_default_str();
  cmd->add_option("--connect-timeout", s.connect_timeout_s,
                  "Seconds to wait for every session to open")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  cmd->add_option("--server-pid", s.server_pid,
                  "Report this process's CPU % and VmRSS over the window");
}

// Derived settings and the limits of a run. Fails with the reason.
Status prepare(Settings& s) {
  if (Status st = parse_loopback(s.host, s.target); !st) return st;
  for (std::uint32_t i = 0; i < s.sources; ++i) {
    in_addr a{};
    a.s_addr = htonl((127u << 24) | (i + 1));
    s.source_addrs.push_back(a);
  }
  if (s.mode == Mode::kPresence) {
    s.sessions = std::uint64_t{s.rooms} * s.members;
    s.members_per_room = s.members;
    if (s.sessions * s.members > kModelEntriesMax)
      return Status::error("rooms x members^2 is too large to model");
  } else {
    s.sessions = s.connections;
    s.members_per_room = (s.connections + s.rooms - 1) / s.rooms;
  }
  if (s.sessions > kSessionsPerSourceMax * s.sources) {
    return Status::error(
        fmt::format("{} sessions need --sources {} or more", s.sessions,
                    (s.sessions + kSessionsPerSourceMax - 1) / kSessionsPerSourceMax));
  }
  const std::uint64_t fds = raise_nofile_limit();
  if (s.sessions + kFdsReserved > fds) {
    return Status::error(fmt::format("{} sessions need {} file descriptors; the limit is {}",
                                     s.sessions, s.sessions + kFdsReserved, fds));
  }
  return Status::ok();
}

// Client k: presence k = room * members + member; idle: round-robin rooms.
void assign(const Settings& s, std::vector<std::unique_ptr<Worker>>& workers) {
  for (auto& w : workers) w->reserve(s.sessions / workers.size() + 1);
  for (std::uint64_t k = 0; k < s.sessions; ++k) {
    std::uint32_t room, member;
    if (s.mode == Mode::kPresence) {
      room = static_cast<std::uint32_t>(k / s.members);
      member = static_cast<std::uint32_t>(k % s.members);
    } else {
      room = static_cast<std::uint32_t>(k % s.rooms);
      member = static_cast<std::uint32_t>(k / s.rooms);
    }
    workers[k % workers.size()]->add(room, member, static_cast<std::uint32_t>(k % s.sources),
                                     s.mode == Mode::kPresence && member == 0);
  }
}

void sleep_until_ns(std::int64_t t) {
  const std::int64_t now = mono_ns();
  if (t > now) std::this_thread::sleep_for(std::chrono::nanoseconds(t - now));
}

// Polls done() every 10 ms until it holds or timeout_ns passes.
bool wait_for(const std::function<bool()>& done, std::int64_t timeout_ns) {
  const std::int64_t end = mono_ns() + timeout_ns;
  while (!done()) {
    if (mono_ns() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// rollcall's own counters (GET /metrics), scraped once a second in the window.
struct CounterSample {
  std::int64_t at_ns = 0;
  std::int64_t frames_out = 0;  // rollcall_frames_out_total: frames queued for sending
  std::int64_t deltas = 0;      // rollcall_deltas_total: room deltas built
};

std::optional<CounterSample> scrape(const Settings& s) {
  const std::string text = http_get(s.target, s.port, "/metrics", 1000);
  CounterSample c;
  c.at_ns = mono_ns();
  c.frames_out = prometheus_sum(text, "rollcall_frames_out_total");
  c.deltas = prometheus_sum(text, "rollcall_deltas_total");
  if (c.frames_out < 0 || c.deltas < 0) return std::nullopt;
  return c;
}

struct ServerSample {
  std::vector<CounterSample> counters;
  bool taken = false;
  double cpu_percent = 0;
  std::int64_t rss_kib = -1;
  std::int64_t rss_max_kib = -1;
  double load_cpu_percent = 0;      // this process, same window
  double loadavg_1m = -1;           // the machine's, at the window's end
  std::int64_t softnet_drops = -1;  // the machine's, during the window
  std::int64_t tcp_retransmits = -1;
};

double loadavg_1m() {
  double v = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &v) != 1) v = -1;
    std::fclose(f);
  }
  return v;
}

// Sleeps through [start, end), sampling the server's memory once a second,
// and measures its CPU time over exactly that window.
ServerSample watch_window(const Settings& s, std::int64_t start_ns, std::int64_t end_ns) {
  const int pid = s.server_pid;
  ServerSample out;
  sleep_until_ns(start_ns);
  const std::int64_t cpu0 = pid > 0 ? process_cpu_ticks(pid) : -1;
  const std::int64_t self0 = process_cpu_ticks(getpid());
  const std::int64_t drops0 = softnet_drops();
  const std::int64_t retrans0 = tcp_retransmits();
  const std::int64_t t0 = mono_ns();
  std::optional<CounterSample> c = scrape(s);
  const bool counters = c.has_value();
  if (counters) out.counters.push_back(*c);
  for (std::int64_t next = t0 + 1'000'000'000; next < end_ns; next += 1'000'000'000) {
    sleep_until_ns(next);
    if (pid > 0) out.rss_max_kib = std::max(out.rss_max_kib, process_rss_kib(pid));
    if (counters && (c = scrape(s))) out.counters.push_back(*c);
  }
  sleep_until_ns(end_ns);
  if (counters && (c = scrape(s))) out.counters.push_back(*c);
  const std::int64_t cpu1 = pid > 0 ? process_cpu_ticks(pid) : -1;
  const std::int64_t self1 = process_cpu_ticks(getpid());
  const double seconds = static_cast<double>(mono_ns() - t0) / 1e9;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  out.loadavg_1m = loadavg_1m();
  if (drops0 >= 0) out.softnet_drops = softnet_drops() - drops0;
  if (retrans0 >= 0) out.tcp_retransmits = tcp_retransmits() - retrans0;
  if (seconds > 0) out.load_cpu_percent = 100.0 * static_cast<double>(self1 - self0) / hz / seconds;
  if (pid <= 0 || cpu0 < 0) return out;
  out.rss_kib = process_rss_kib(pid);
  out.rss_max_kib = std::max(out.rss_max_kib, out.rss_kib);
  if (cpu1 >= 0 && seconds > 0) {
    out.taken = true;
    out.cpu_percent = 100.0 * static_cast<double>(cpu1 - cpu0) / hz / seconds;
  }
  return out;
}

struct RunTimes {
  double connect_s = 0;
  double window_s = 0;
  std::uint64_t rooms_synced = 0;
  double settle_s = 0;  // from the sync requests until every model matched (or the deadline)
};

// The phases after the measuring window (presence only): stop sending, let
// the last deltas go out, have each room's probe ask for a sync, then wait
// (bounded) until every open client's model equals its room's sync.
void converge(Shared& sh, std::uint32_t threads, RunTimes& t) {
  const std::int64_t tick_ms = std::max<std::int64_t>(sh.tick_ms.load(), 0);
  sh.phase.store(static_cast<int>(Phase::kStop), std::memory_order_release);
  // Two ticks for the server's last coalesced deltas, plus scheduling slack.
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * tick_ms + 50));
  const auto step = [&](Phase p) {
    sh.workers_at_phase.store(0);
    sh.phase.store(static_cast<int>(p), std::memory_order_release);
    wait_for([&] { return sh.workers_at_phase.load() >= threads; }, kStepWaitNs);
  };
  const std::int64_t t0 = mono_ns();
  step(Phase::kSync);
  step(Phase::kSettle);
  wait_for([&] { return sh.settled.load(std::memory_order_acquire) >= sh.to_settle.load(); },
           kSettleWaitNs);
  t.settle_s = static_cast<double>(mono_ns() - t0) / 1e9;
  t.rooms_synced = sh.synced.load(std::memory_order_acquire);
  step(Phase::kCompare);
}

double per_s(std::uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0;
}
double ms(std::uint64_t us) {
  return static_cast<double>(us) / 1000.0;
}

template <typename Map>
std::string json_map(const Map& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    if (out.size() > 1) out += ",";
    out += fmt::format("\"{}\":{}", k, v);
  }
  return out + "}";
}

// What the server says it sent, interval by interval. In an interval of L ms
// a room can send at most floor(L / tick) + 1 deltas (one per tick end, plus
// one leading edge), so members x that bounds its frames: an interval above
// it is a violation of "frames/s never above members x ticks/s".
std::string server_counters_json(const std::vector<CounterSample>& c, std::uint64_t members,
                                 std::uint32_t rooms, std::int64_t tick_ms) {
  if (c.size() < 2 || tick_ms <= 0) return "\"server_counters\":null,";
  double frames_max = 0, deltas_max = 0;
  std::uint64_t frame_violations = 0, delta_violations = 0;
  for (std::size_t i = 1; i < c.size(); ++i) {
    const double seconds = static_cast<double>(c[i].at_ns - c[i - 1].at_ns) / 1e9;
    // Each scrape's own HTTP answer is counted as one frame by the next one.
    const std::int64_t frames = c[i].frames_out - c[i - 1].frames_out - 1;
    const std::int64_t deltas = c[i].deltas - c[i - 1].deltas;
    const auto ticks =
        static_cast<std::int64_t>(seconds * 1000.0 / static_cast<double>(tick_ms)) + 1;
    if (frames > static_cast<std::int64_t>(members) * ticks) ++frame_violations;
    if (deltas > static_cast<std::int64_t>(rooms) * ticks) ++delta_violations;
    frames_max = std::max(frames_max, static_cast<double>(frames) / seconds);
    deltas_max = std::max(deltas_max, static_cast<double>(deltas) / seconds);
  }
  const double seconds = static_cast<double>(c.back().at_ns - c.front().at_ns) / 1e9;
  const auto intervals = static_cast<std::int64_t>(c.size() - 1);
  return fmt::format(
      "\"server_counters\":{{\"frames_sent_per_s\":{:.1f},\"frames_sent_per_s_max\":{:.1f},"
      "\"frames_cap_per_s\":{:.0f},"
      "\"frame_cap_violations\":{},\"deltas_per_s\":{:.1f},\"deltas_per_s_max\":{:.1f},\"deltas_"
      "cap_per_s\":{:.0f},"
      "\"delta_cap_violations\":{},\"intervals\":{}}},",
      static_cast<double>(c.back().frames_out - c.front().frames_out - intervals) / seconds,
      frames_max, static_cast<double>(members) * 1000.0 / static_cast<double>(tick_ms),
      frame_violations, static_cast<double>(c.back().deltas - c.front().deltas) / seconds,
      deltas_max, static_cast<double>(rooms) * 1000.0 / static_cast<double>(tick_ms),
      delta_violations, intervals);
}

std::string report_json(const Settings& s, const Shared& sh, const Counters& c, const RunTimes& t,
                        const ServerSample& srv) {
  const std::int64_t tick_ms = sh.tick_ms.load();
  const std::uint64_t open = sh.ready.load();
  const double w = t.window_s;
  std::uint64_t fps_max = 0;
  for (std::size_t i = 0; i < c.frames_per_second.size() && static_cast<double>(i + 1) <= w; ++i) {
    fps_max = std::max(fps_max, c.frames_per_second[i]);
  }
  const bool presence = s.mode == Mode::kPresence;
  const bool converged = presence && t.rooms_synced == s.rooms && c.clients_compared == open &&
                         c.clients_mismatched == 0 && c.clients_unchecked == 0;
  std::string j = "{";
  j += fmt::format("\"mode\":\"{}\",\"target\":\"{}:{}\",\"rooms\":{},\"members_per_room\":{},",
                   presence ? "presence" : "idle", s.host, s.port, s.rooms, s.members_per_room);
  j += fmt::format(
      "\"rate_hz\":{},\"duration_s\":{},\"warmup_s\":{},\"threads\":{},\"sources\":{},",
      presence ? s.rate_hz : 0, s.duration_s, presence ? s.warmup_s : 0, s.threads, s.sources);
  j += fmt::format(
      "\"sessions_target\":{},\"sessions_open\":{},\"sessions_failed\":{},\"connect_s\":{:.3f},",
      s.sessions, open, sh.failed.load(), t.connect_s);
  j += fmt::format("\"tick_ms\":{},\"window_s\":{:.3f},", tick_ms, w);
  j += fmt::format(
      "\"updates_sent\":{},\"updates_sent_per_s\":{:.1f},\"updates_skipped\":{},\"send_late_ms_"
      "max\":{:.3f},",
      c.updates_sent, per_s(c.updates_sent, w), c.updates_skipped, ms(c.send_late_us_max));
  j += fmt::format(
      "\"frames\":{},\"frames_per_s\":{:.1f},\"frames_per_s_max\":{},\"bytes_per_s\":{:.0f},",
      c.frames, per_s(c.frames, w), fps_max, per_s(c.bytes, w));
  j += fmt::format("\"deltas_per_s\":{:.1f},\"client_deltas_per_s_max\":{},", per_s(c.deltas, w),
                   c.client_deltas_per_s_max);
  if (tick_ms > 0) {
    j += fmt::format("\"frames_cap_per_s\":{:.0f},",
                     static_cast<double>(open) * 1000.0 / static_cast<double>(tick_ms));
  } else {
    j += "\"frames_cap_per_s\":null,";
  }
  j += fmt::format("\"deliveries\":{},\"deliveries_per_s\":{:.1f},", c.deliveries,
                   per_s(c.deliveries, w));
  const Histogram& h = c.latency_us;
  j += fmt::format(
      "\"latency_ms\":{{\"samples\":{},\"p50\":{:.3f},\"p90\":{:.3f},\"p99\":{:.3f},\"p999\":{:.3f}"
      ",\"max\":{:.3f},\"mean\":{:.3f}}},",
      h.count(), ms(h.percentile(0.50)), ms(h.percentile(0.90)), ms(h.percentile(0.99)),
      ms(h.percentile(0.999)), ms(h.max()), h.mean() / 1000.0);
  if (srv.taken) {
    j += fmt::format(
        "\"server\":{{\"pid\":{},\"cpu_percent\":{:.2f},\"rss_kib\":{},\"rss_max_kib\":{}}},",
        s.server_pid, srv.cpu_percent, srv.rss_kib, srv.rss_max_kib);
  } else {
    j += "\"server\":null,";
  }
  j += fmt::format(
      "\"load_cpu_percent\":{:.2f},\"loadavg_1m\":{:.2f},\"softnet_drops\":{},\"tcp_retransmits\":{"
      "},",
      srv.load_cpu_percent, srv.loadavg_1m, srv.softnet_drops, srv.tcp_retransmits);
  j += server_counters_json(srv.counters, open, s.rooms, tick_ms);
  j += fmt::format(
      "\"errors\":{{\"connect\":{},\"handshake\":{},\"handshake_statuses\":{},\"protocol\":{},"
      "\"socket\":{},",
      c.connect_errors, c.handshake_errors, json_map(c.handshake_statuses), c.protocol_errors,
      c.socket_errors);
  j += fmt::format("\"error_messages\":{},\"error_codes\":{},\"queued_messages\":{}}},",
                   c.errors_received, json_map(c.error_codes), c.queued_messages);
  j += fmt::format("\"closes\":{{\"server\":{},\"eof\":{},\"codes\":{}}},", c.server_closes,
                   c.eof_closes, json_map(c.close_codes));
  j += fmt::format(
      "\"pings_answered\":{},\"unrequested_syncs\":{},\"tick_gaps\":{},\"model_anomalies\":{},"
      "\"foreign_entries\":{},",
      c.pings_answered, c.unrequested_syncs, c.tick_gaps, c.model_anomalies, c.foreign_entries);
  if (presence) {
    j += fmt::format(
        "\"convergence\":{{\"rooms\":{},\"rooms_synced\":{},\"clients_compared\":{},\"clients_"
        "mismatched\":{},"
        "\"entries_mismatched\":{},\"clients_unchecked\":{},\"settle_s\":{:.3f},\"ok\":{}}}",
        s.rooms, t.rooms_synced, c.clients_compared, c.clients_mismatched, c.entries_mismatched,
        c.clients_unchecked, t.settle_s, converged);
  } else {
    j += "\"convergence\":null";
  }
  return j + "}";
}

void report_human(const Settings& s, const Shared& sh, const Counters& c, const RunTimes& t,
                  const ServerSample& srv) {
  const double w = t.window_s;
  std::fprintf(
      stderr, "rollcall-load %s: %llu/%llu sessions open in %.1f s, window %.1f s, tick %lld ms\n",
      s.mode == Mode::kPresence ? "presence" : "idle",
      static_cast<unsigned long long>(sh.ready.load()), static_cast<unsigned long long>(s.sessions),
      t.connect_s, w, static_cast<long long>(sh.tick_ms.load()));
  std::fprintf(stderr,
               "  sent %.0f updates/s (%llu skipped), received %.0f frames/s, %.0f deliveries/s\n",
               per_s(c.updates_sent, w), static_cast<unsigned long long>(c.updates_skipped),
               per_s(c.frames, w), per_s(c.deliveries, w));
  const Histogram& h = c.latency_us;
  std::fprintf(stderr, "  latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (%llu samples)\n",
               ms(h.percentile(0.5)), ms(h.percentile(0.9)), ms(h.percentile(0.99)), ms(h.max()),
               static_cast<unsigned long long>(h.count()));
  std::fprintf(stderr,
               "  errors: connect %llu, handshake %llu, protocol %llu, socket %llu, messages %llu; "
               "closes: server %llu, eof %llu\n",
               static_cast<unsigned long long>(c.connect_errors),
               static_cast<unsigned long long>(c.handshake_errors),
               static_cast<unsigned long long>(c.protocol_errors),
               static_cast<unsigned long long>(c.socket_errors),
               static_cast<unsigned long long>(c.errors_received),
               static_cast<unsigned long long>(c.server_closes),
               static_cast<unsigned long long>(c.eof_closes));
  if (srv.taken) {
    std::fprintf(stderr, "  server pid %d: cpu %.1f%%, rss %lld KiB (max %lld)\n", s.server_pid,
                 srv.cpu_percent, static_cast<long long>(srv.rss_kib),
                 static_cast<long long>(srv.rss_max_kib));
  }
  std::fprintf(stderr,
               "  load generator cpu %.1f%%, machine load average %.2f, backlog drops %lld, TCP "
               "retransmits %lld\n",
               srv.load_cpu_percent, srv.loadavg_1m, static_cast<long long>(srv.softnet_drops),
               static_cast<long long>(srv.tcp_retransmits));
  if (s.mode == Mode::kPresence) {
    std::fprintf(stderr,
                 "  convergence: %llu/%u rooms synced, %llu clients compared, %llu mismatched "
                 "(%llu entries), "
                 "%llu unchecked, settled in %.2f s\n",
                 static_cast<unsigned long long>(t.rooms_synced), s.rooms,
                 static_cast<unsigned long long>(c.clients_compared),
                 static_cast<unsigned long long>(c.clients_mismatched),
                 static_cast<unsigned long long>(c.entries_mismatched),
                 static_cast<unsigned long long>(c.clients_unchecked), t.settle_s);
  }
}

int run(const Settings& settings) {
  Shared sh;
  sh.settings = settings;
  const Settings& s = sh.settings;
  if (s.mode == Mode::kPresence) {
    sh.truth.resize(s.rooms);
    sh.truth_ready = std::vector<std::atomic<std::uint8_t>>(s.rooms);
  }
  std::vector<std::unique_ptr<Worker>> workers;
  for (std::uint32_t i = 0; i < s.threads; ++i) workers.push_back(std::make_unique<Worker>(sh, i));
  assign(s, workers);
  std::vector<std::thread> threads;
  const std::int64_t t0 = mono_ns();
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });

  RunTimes t;
  std::int64_t next_note = t0 + 2'000'000'000;
  wait_for(
      [&] {
        if (mono_ns() >= next_note) {
          next_note += 2'000'000'000;
          std::fprintf(stderr, "rollcall-load: %llu/%llu sessions open\n",
                       static_cast<unsigned long long>(sh.ready.load()),
                       static_cast<unsigned long long>(s.sessions));
        }
        return sh.ready.load() + sh.failed.load() >= s.sessions;
      },
      static_cast<std::int64_t>(s.connect_timeout_s * 1e9));
  t.connect_s = static_cast<double>(mono_ns() - t0) / 1e9;
  const std::uint64_t open = sh.ready.load();
  if (open == s.sessions) {
    std::fprintf(stderr, "rollcall-load: all %llu sessions open\n",
                 static_cast<unsigned long long>(open));
  } else {
    std::fprintf(stderr, "rollcall-load: only %llu of %llu sessions open\n",
                 static_cast<unsigned long long>(open),
                 static_cast<unsigned long long>(s.sessions));
  }
  std::fflush(stderr);

  ServerSample srv;
  const bool presence = s.mode == Mode::kPresence;
  if (open > 0) {
    const std::int64_t start =
        mono_ns() + (presence ? static_cast<std::int64_t>(s.warmup_s * 1e9) : 0);
    const std::int64_t end = start + static_cast<std::int64_t>(s.duration_s * 1e9);
    sh.window_start_ns.store(start);
    sh.window_end_ns.store(end);
    sh.phase.store(static_cast<int>(Phase::kRun), std::memory_order_release);
    srv = watch_window(s, start, end);
    t.window_s = static_cast<double>(end - start) / 1e9;
    if (presence) converge(sh, s.threads, t);
  }
  sh.workers_at_phase.store(0);
  sh.phase.store(static_cast<int>(Phase::kClose), std::memory_order_release);
  wait_for([&] { return sh.workers_at_phase.load() >= s.threads; }, kStepWaitNs);
  sh.phase.store(static_cast<int>(Phase::kDone), std::memory_order_release);
  for (auto& th : threads) th.join();

  Counters total;
  for (auto& w : workers) total.merge(w->counters());
  std::printf("%s\n", report_json(s, sh, total, t, srv).c_str());
  std::fflush(stdout);
  report_human(s, sh, total, t, srv);
  return open > 0 ? 0 : 1;
}

}  // namespace
}  // namespace rc::load

int main(int argc, char** argv) {
  using rc::load::Settings;
  signal(SIGPIPE, SIG_IGN);
  Settings presence;
  presence.mode = rc::load::Mode::kPresence;
  Settings idle;
  idle.mode = rc::load::Mode::kIdle;
  idle.duration_s = 10;
  idle.rooms = 100;

  CLI::App app{"rollcall-load: loopback load generator for rollcall (and the baseline server)"};
  app.require_subcommand(1);
  CLI::App* p = app.add_subcommand("presence",
                                   "Members send presence updates; measure deliveries and latency");
  rc::load::add_common(p, presence);
  p->add_option("--members", presence.members, "Members per room")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  p->add_option("--rate", presence.rate_hz, "Presence updates per member per second")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  p->add_option("--warmup", presence.warmup_s, "Seconds of sending before the window")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  CLI::App* i = app.add_subcommand("idle", "Open sessions and hold them, answering pings");
  rc::load::add_common(i, idle);
  i->add_option("--connections", idle.connections, "Sessions to open")
      ->check(CLI::Range(1u, 5000000u))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  Settings s = p->parsed() ? presence : idle;
  if (rc::Status st = rc::load::prepare(s); !st) {
    std::fprintf(stderr, "rollcall-load: %s\n", st.message().c_str());
    return 2;
  }
  return rc::load::run(s);
}
