#pragma once
// What rollcall-load's main thread measures on the server side while the
// workers run: the server process's CPU time and memory over exactly the
// measured window (/proc/PID), the machine's load and loopback drops, and
// rollcall's own counters (GET /metrics over HTTP or, with --tls, HTTPS),
// scraped once a second.
//
// Threading: main thread only.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tools/load/net.h"
#include "tools/load/shared.h"
#include "tools/load/tls_client.h"

namespace rc::load {

inline void sleep_until_ns(std::int64_t t) {
  const std::int64_t now = mono_ns();
  if (t > now) std::this_thread::sleep_for(std::chrono::nanoseconds(t - now));
}

// Polls done() every 10 ms until it holds or timeout_ns passes.
inline bool wait_for(const std::function<bool()>& done, std::int64_t timeout_ns) {
  const std::int64_t end = mono_ns() + timeout_ns;
  while (!done()) {
    if (mono_ns() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// GET of the server's own HTTP endpoints, in plaintext or TLS like the sessions.
class ServerHttp {
 public:
  explicit ServerHttp(const Settings& s) : s_(s) {
    if (s.tls) tls_ = std::make_unique<TlsClientConfig>();
  }
  // The whole answer, or empty on any failure (timeout_ms in all).
  std::string get(const char* path, int timeout_ms = 1000) const {
    if (tls_ != nullptr) return tls_http_get(*tls_, s_.target, s_.port, path, timeout_ms);
    return http_get(s_.target, s_.port, path, timeout_ms);
  }

 private:
  const Settings& s_;
  std::unique_ptr<TlsClientConfig> tls_;
};

// rollcall's own counters (GET /metrics), scraped once a second in the window.
struct CounterSample {
  std::int64_t at_ns = 0;
  std::int64_t frames_out = 0;  // rollcall_frames_out_total: frames queued for sending
  std::int64_t deltas = 0;      // rollcall_deltas_total: room deltas built
};

struct ServerSample {
  std::vector<CounterSample> counters;
  std::string first_metrics;  // the /metrics text at the window's start and end
  std::string last_metrics;
  bool taken = false;
  double cpu_percent = 0;
  std::int64_t rss_kib = -1;
  std::int64_t rss_max_kib = -1;
  double load_cpu_percent = 0;      // this process, same window
  double loadavg_1m = -1;           // the machine's, at the window's end
  std::int64_t softnet_drops = -1;  // the machine's, during the window
  std::int64_t tcp_retransmits = -1;
};

inline std::optional<CounterSample> scrape(const ServerHttp& http, std::string& text) {
  text = http.get("/metrics");
  CounterSample c;
  c.at_ns = mono_ns();
  c.frames_out = prometheus_sum(text, "rollcall_frames_out_total");
  c.deltas = prometheus_sum(text, "rollcall_deltas_total");
  if (c.frames_out < 0 || c.deltas < 0) return std::nullopt;
  return c;
}

inline double loadavg_1m() {
  double v = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &v) != 1) v = -1;
    std::fclose(f);
  }
  return v;
}

// Sleeps through [start, end), sampling the server's memory once a second,
// and measures its CPU time over exactly that window.
inline ServerSample watch_window(const Settings& s, std::int64_t start_ns, std::int64_t end_ns) {
  const int pid = s.server_pid;
  const ServerHttp http(s);
  ServerSample out;
  sleep_until_ns(start_ns);
  const std::int64_t cpu0 = pid > 0 ? process_cpu_ticks(pid) : -1;
  const std::int64_t self0 = process_cpu_ticks(getpid());
  const std::int64_t drops0 = softnet_drops();
  const std::int64_t retrans0 = tcp_retransmits();
  const std::int64_t t0 = mono_ns();
  std::string text;
  std::optional<CounterSample> c = scrape(http, text);
  const bool counters = c.has_value();
  if (counters) {
    out.counters.push_back(*c);
    out.first_metrics = text;
  }
  for (std::int64_t next = t0 + 1'000'000'000; next < end_ns; next += 1'000'000'000) {
    sleep_until_ns(next);
    if (pid > 0) out.rss_max_kib = std::max(out.rss_max_kib, process_rss_kib(pid));
    if (counters && (c = scrape(http, text))) out.counters.push_back(*c);
  }
  sleep_until_ns(end_ns);
  if (counters && (c = scrape(http, text))) {
    out.counters.push_back(*c);
    out.last_metrics = text;
  }
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

}  // namespace rc::load
