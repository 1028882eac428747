#pragma once
// What every shard's app shares, read-only after start: the configuration,
// the shard group (for posting and for metrics) and the per-shard counters.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/config.h"
#include "core/metrics.h"
#include "core/shard.h"
#include "persist/chat_log.h"

namespace rc::rooms {

// Close codes rollcall sends, for the per-code counter.
inline constexpr std::array<std::uint16_t, 9> kCountedCloseCodes = {1000, 1001, 1002, 1003, 1007,
                                                                    1008, 1009, 1011, 1013};
// Error codes of PROTOCOL 3.1, for the per-code counter (same order as out::code).
inline constexpr std::array<std::string_view, 7> kCountedErrorCodes = {
    "BAD_REQUEST", "RATE_LIMITED", "FORBIDDEN",    "INTERNAL",
    "ROOM_FULL",   "TOO_LARGE",    "SHUTTING_DOWN"};
// Classes of HTTP error answers, for the per-class counter (see http_error_slot).
inline constexpr std::array<std::string_view, 6> kHttpErrorClasses = {"400", "401_403", "404_405",
                                                                      "426", "431",     "other"};

// Counters of one shard's app (single writer: that shard).
struct AppStats {
  Counter frames_in_total;  // every WebSocket frame received, continuations included
  Counter control_frames_in_total;
  Counter messages_in_total;
  Counter http_requests_total;
  Counter upgrades_total;
  std::array<Counter, kCountedCloseCodes.size()> closes_sent;
  std::array<Counter, kCountedErrorCodes.size()> errors_sent;
  std::array<Counter, kHttpErrorClasses.size()> http_errors;
  Counter members;            // gauge: members of this shard's rooms (grace included)
  Counter queued;             // gauge: sessions waiting in this shard's room queues
  Counter presence_total;     // accepted presence updates
  Counter deltas_total;       // deltas built (one per room per tick at most)
  Counter delta_bytes_total;  // bytes of those deltas (each built once, sent to many)
  Counter syncs_total;
  Counter slow_clients_total;    // times a session fell behind and stopped getting deltas
  Counter queued_total;          // sessions that had to wait in a room's queue
  Counter chat_accepted_total;   // chat messages handed to the log
  Counter chat_broadcast_total;  // committed chat messages broadcast
  Counter chat_rate_limited_total;
  Counter slow_consumers_total;  // sessions closed 1008 for unsent chat over --max-outbound-bytes
  static constexpr std::uint64_t kTickBoundsUs[] = {50,   100,  250,   500,   1000,
                                                    2500, 5000, 10000, 25000, 50000};
  Histogram<std::size(kTickBoundsUs)> tick_us{kTickBoundsUs};  // time spent flushing at tick end
};

// Mail::app_kind of the chat log's replies (payload: persist::LogReply*).
inline constexpr std::uint32_t kMailLogReply = 1;

struct Context {
  const Config& config;
  ShardGroup& group;
  persist::ChatLog& log;
  std::string jwt_secret;  // empty: no token is accepted
  std::unique_ptr<AppStats[]> stats;
  // Appends metrics of parts the rooms layer does not see (the chat log's
  // thread); any thread may call it.
  std::function<void(std::string&)> more_metrics;
  Context(const Config& c, ShardGroup& g, persist::ChatLog& l, std::string secret)
      : config(c), group(g), log(l), jwt_secret(std::move(secret)), stats(new AppStats[g.size()]) {}
};

}  // namespace rc::rooms
