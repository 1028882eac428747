// /metrics: Prometheus text exposition format 0.0.4, summed from every
// shard's counters (each written by its own shard, read here relaxed).

#include <fmt/format.h>

#include "rooms/app.h"

namespace rc::rooms {
namespace {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

template <typename Get>
void per_shard(std::string& out, ShardGroup& g, std::string_view name, Get get) {
  for (std::uint32_t i = 0; i < g.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "{}{{shard=\"{}\"}} {}\n", name, i, get(i));
  }
}

// A counter family with one series per label value, each summed over the
// shards: counters_of(shard)[c] counts labels[c].
template <typename Labels, typename CountersOf>
void by_label(std::string& out, std::string_view name, std::string_view help,
              std::string_view label, const Labels& labels, std::uint32_t shards,
              CountersOf counters_of) {
  family(out, name, "counter", help);
  for (std::size_t c = 0; c < labels.size(); ++c) {
    std::uint64_t sum = 0;
    for (std::uint32_t i = 0; i < shards; ++i) sum += counters_of(i)[c].get();
    fmt::format_to(std::back_inserter(out), "{}{{{}=\"{}\"}} {}\n", name, label, labels[c], sum);
  }
}

}  // namespace

std::string App::metrics() const {
  ShardGroup& g = ctx_.group;
  std::string out;
  out.reserve(4096);
  struct Core {
    std::string_view name, type, help;
    Counter ShardStats::*field;
  };
  const Core core[] = {
      {"rollcall_connections", "gauge", "Open TCP connections.", &ShardStats::connections},
      {"rollcall_sessions", "gauge", "Open WebSocket sessions, queued ones included.",
       &ShardStats::sessions},
      {"rollcall_rooms", "gauge", "Rooms with at least one member.", &ShardStats::rooms},
      {"rollcall_accepted_total", "counter", "TCP connections accepted.",
       &ShardStats::accepted_total},
      {"rollcall_bytes_in_total", "counter", "Bytes received.", &ShardStats::bytes_in_total},
      {"rollcall_bytes_out_total", "counter", "Bytes sent.", &ShardStats::bytes_out_total},
      {"rollcall_frames_out_total", "counter", "Frames and HTTP answers queued for sending.",
       &ShardStats::frames_out_total},
      {"rollcall_loop_iterations_total", "counter", "Event-loop turns.",
       &ShardStats::loop_iterations_total},
      {"rollcall_submits_total", "counter", "io_uring submit calls.", &ShardStats::submits_total},
      {"rollcall_recv_nobufs_total", "counter", "Receives that found the buffer ring empty.",
       &ShardStats::recv_nobufs_total},
      {"rollcall_heap_trims_total", "counter",
       "Times the shard gave free heap pages back to the system after a burst.",
       &ShardStats::heap_trims_total},
      {"rollcall_handoffs_total", "counter", "Connections handed to the shard owning their room.",
       &ShardStats::handoffs_total},
  };
  for (const Core& c : core) {
    family(out, c.name, c.type, c.help);
    per_shard(out, g, c.name, [&](std::uint32_t i) { return (g.stats(i).*c.field).get(); });
  }
  struct App {
    std::string_view name, help;
    Counter AppStats::*field;
  };
  const App app[] = {
      {"rollcall_frames_in_total",
       "WebSocket frames received (continuations and control frames included).",
       &AppStats::frames_in_total},
      {"rollcall_control_frames_in_total", "WebSocket control frames received (ping, pong, close).",
       &AppStats::control_frames_in_total},
      {"rollcall_messages_in_total", "WebSocket messages received.", &AppStats::messages_in_total},
      {"rollcall_http_requests_total", "HTTP requests parsed.", &AppStats::http_requests_total},
      {"rollcall_upgrades_total", "WebSocket upgrades accepted.", &AppStats::upgrades_total},
      {"rollcall_presence_updates_total", "Presence updates accepted.", &AppStats::presence_total},
      {"rollcall_deltas_total", "Room deltas built (each sent to every member).",
       &AppStats::deltas_total},
      {"rollcall_delta_bytes_total", "Bytes of the deltas built.", &AppStats::delta_bytes_total},
      {"rollcall_syncs_total", "sync messages sent.", &AppStats::syncs_total},
      {"rollcall_slow_client_events_total", "Sessions that fell behind and skipped deltas.",
       &AppStats::slow_clients_total},
      {"rollcall_queued_sessions_total", "Sessions that waited in a room's queue.",
       &AppStats::queued_total},
      {"rollcall_chat_accepted_total", "Chat messages handed to the log.",
       &AppStats::chat_accepted_total},
      {"rollcall_chat_broadcast_total", "Committed chat messages broadcast.",
       &AppStats::chat_broadcast_total},
      {"rollcall_chat_rate_limited_total", "Chat messages refused by the rate limit.",
       &AppStats::chat_rate_limited_total},
      {"rollcall_slow_consumers_total",
       "Sessions closed 1008 for unsent chat over --max-outbound-bytes.",
       &AppStats::slow_consumers_total},
  };
  const App gauges[] = {
      {"rollcall_members", "Members of rooms (reconnect grace included).", &AppStats::members},
      {"rollcall_queued_sessions", "Sessions waiting in room queues.", &AppStats::queued},
  };
  for (const App& a : gauges) {
    family(out, a.name, "gauge", a.help);
    per_shard(out, g, a.name, [&](std::uint32_t i) { return (ctx_.stats[i].*a.field).get(); });
  }
  for (const App& a : app) {
    family(out, a.name, "counter", a.help);
    per_shard(out, g, a.name, [&](std::uint32_t i) { return (ctx_.stats[i].*a.field).get(); });
  }
  by_label(
      out, "rollcall_close_frames_sent_total", "Close frames sent, by close code.", "code",
      kCountedCloseCodes,
      g.size(), [&](std::uint32_t i) -> const auto& { return ctx_.stats[i].closes_sent; });
  by_label(
      out, "rollcall_errors_sent_total", "error messages sent, by code.", "code",
      kCountedErrorCodes,
      g.size(), [&](std::uint32_t i) -> const auto& { return ctx_.stats[i].errors_sent; });
  by_label(
      out, "rollcall_http_errors_total", "HTTP error answers, by status class.", "status",
      kHttpErrorClasses,
      g.size(), [&](std::uint32_t i) -> const auto& { return ctx_.stats[i].http_errors; });
  family(out, "rollcall_tick_flush_seconds", "histogram",
         "Time spent building and queueing deltas at a tick end.");
  for (std::uint32_t i = 0; i < g.size(); ++i) {
    const auto& h = ctx_.stats[i].tick_us;
    for (std::size_t b = 0; b < h.size(); ++b) {
      fmt::format_to(std::back_inserter(out),
                     "rollcall_tick_flush_seconds_bucket{{shard=\"{}\",le=\"{}\"}} {}\n", i,
                     static_cast<double>(h.bound(b)) / 1e6, h.bucket(b));
    }
    fmt::format_to(std::back_inserter(out),
                   "rollcall_tick_flush_seconds_bucket{{shard=\"{}\",le=\"+Inf\"}} {}\n", i,
                   h.count());
    fmt::format_to(std::back_inserter(out), "rollcall_tick_flush_seconds_sum{{shard=\"{}\"}} {}\n",
                   i, static_cast<double>(h.sum()) / 1e6);
    fmt::format_to(std::back_inserter(out),
                   "rollcall_tick_flush_seconds_count{{shard=\"{}\"}} {}\n", i, h.count());
  }
  if (ctx_.more_metrics) ctx_.more_metrics(out);
  return out;
}

}  // namespace rc::rooms
