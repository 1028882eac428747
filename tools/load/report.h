#pragma once
// rollcall-load's reports for the presence and idle modes: one JSON object
// on stdout (what the bench scripts read) and a short summary on stderr.
// The chat and handshake reports are in chat_report.h and handshakes.h.
//
// Threading: main thread only, after the workers have ended.

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/load/server_watch.h"
#include "tools/load/shared.h"

namespace rc::load {

struct RunTimes {
  double connect_s = 0;
  double window_s = 0;
  std::uint64_t rooms_synced = 0;
  double settle_s = 0;  // from the sync requests until every model matched (or the deadline)
  double drain_s = 0;   // chat: from the window's end until every message was answered
};

inline double per_s(std::uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0;
}
inline double ms(std::uint64_t us) {
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

// {"samples":…,"p50":…,…} in milliseconds.
inline std::string latency_json(const Histogram& h) {
  return fmt::format(
      "{{\"samples\":{},\"p50\":{:.3f},\"p90\":{:.3f},\"p99\":{:.3f},\"p999\":{:.3f}"
      ",\"max\":{:.3f},\"mean\":{:.3f}}}",
      h.count(), ms(h.percentile(0.50)), ms(h.percentile(0.90)), ms(h.percentile(0.99)),
      ms(h.percentile(0.999)), ms(h.max()), h.mean() / 1000.0);
}

// The parts every session mode reports the same way: server CPU and memory,
// the machine, TLS, errors and closes. Each ends with a comma.
inline std::string common_json(const Settings& s, const Counters& c, const ServerSample& srv) {
  std::string j;
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
  if (s.tls) {
    j += fmt::format(
        "\"tls\":{{\"suite\":\"{}\",\"server_key\":\"{}\",\"handshake_errors\":{},\"first_error\":"
        "\"{}\",\"handshake_ms\":{}}},",
        c.tls.suite, c.tls.peer_key, c.tls.errors, c.tls.first_error,
        latency_json(c.tls.handshake_us));
  } else {
    j += "\"tls\":null,";
  }
  j += fmt::format(
      "\"errors\":{{\"connect\":{},\"handshake\":{},\"handshake_statuses\":{},\"protocol\":{},"
      "\"socket\":{},",
      c.connect_errors, c.handshake_errors, json_map(c.handshake_statuses), c.protocol_errors,
      c.socket_errors);
  j += fmt::format("\"error_messages\":{},\"error_codes\":{},\"queued_messages\":{}}},",
                   c.errors_received, json_map(c.error_codes), c.queued_messages);
  j += fmt::format("\"closes\":{{\"server\":{},\"eof\":{},\"codes\":{}}},", c.server_closes,
                   c.eof_closes, json_map(c.close_codes));
  return j;
}

inline void common_human(const Settings& s, const Counters& c, const ServerSample& srv) {
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
  if (s.tls) {
    std::fprintf(stderr, "  tls: %s, server key %s, handshake p50 %.2f ms, %llu failed%s%s\n",
                 c.tls.suite.c_str(), c.tls.peer_key.c_str(),
                 ms(c.tls.handshake_us.percentile(0.5)),
                 static_cast<unsigned long long>(c.tls.errors),
                 c.tls.first_error.empty() ? "" : ": ", c.tls.first_error.c_str());
  }
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
}

// What the server says it sent, interval by interval. In an interval of L ms
// a room can send at most floor(L / tick) + 1 deltas (one per tick end, plus
// one leading edge), so members x that bounds its frames: an interval above
// it is a violation of "frames/s never above members x ticks/s".
inline std::string server_counters_json(const std::vector<CounterSample>& c, std::uint64_t members,
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

inline std::string report_json(const Settings& s, const Shared& sh, const Counters& c,
                               const RunTimes& t, const ServerSample& srv) {
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
  j += "\"latency_ms\":" + latency_json(c.latency_us) + ",";
  j += common_json(s, c, srv);
  j += server_counters_json(srv.counters, open, s.rooms, tick_ms);
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

inline void report_human(const Settings& s, const Shared& sh, const Counters& c, const RunTimes& t,
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
  common_human(s, c, srv);
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

}  // namespace rc::load
