#pragma once
// What rollcall-load's threads share: the run's settings, the phase the main
// thread drives them through, and the counters each worker fills and the main
// thread merges once the workers have ended.
//
// Threading: Settings are written before the workers start and only read
// afterwards. Phase and the atomics below are the only state written by one
// thread and read by others while the workers run. A room's truth (its
// probe's model right after the sync answer) is written once, by the worker
// owning the probe, before truth_ready[room] is set (release); other workers
// read it only after seeing that flag (acquire).

#include <netinet/in.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "tools/load/histogram.h"
#include "tools/load/server_messages.h"
#include "tools/load/tls_client.h"

namespace rc::load {

enum class Mode : std::uint8_t { kPresence, kIdle, kChat, kHandshakes };

// The order the main thread moves the workers through.
enum class Phase : int {
  kConnect,  // open sessions at the ramp rate, wait for every welcome
  kRun,      // presence: send updates; chat: send messages; idle: hold the sessions
  kStop,     // stop sending; let the server's last deltas (chat: the last answers) arrive
  kSync,     // each room's probe member asks for a sync
  kSettle,   // a client whose model equals its room's sync is settled (converged)
  kCompare,  // deadline: clients not settled are compared one last time (mismatches)
  kClose,    // close handshakes
  kDone,     // workers leave their loops
};

struct Settings {
  Mode mode = Mode::kPresence;
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string room_prefix = "load";
  std::uint32_t rooms = 1;
  std::uint32_t members = 100;       // presence: per room
  std::uint32_t connections = 1000;  // idle: in all
  double rate_hz = 1;  // presence: per member; chat: per session (derived from chat_rate)
  double duration_s = 20;
  double warmup_s = 5;
  std::uint32_t sources = 1;
  double ramp_per_s = 2000;
  std::uint32_t threads = 1;
  double connect_timeout_s = 120;
  int server_pid = 0;
  bool tls = false;                // connect with TLS (wss, https)
  double chat_rate = 1000;         // chat: messages per second over all sessions (open loop)
  std::uint32_t inflight = 0;      // chat: > 0 is closed loop, this many unanswered per session
  std::uint32_t text_bytes = 40;   // chat: text of each message
  double drain_s = 10;             // chat: longest wait for the last answers after the window
  std::uint32_t concurrency = 32;  // handshakes: connections under way
  // Derived before the workers start.
  in_addr target{};
  std::vector<in_addr> source_addrs;
  std::uint64_t sessions = 0;
  std::uint32_t members_per_room = 0;  // model size: members, or the idle sessions of a room
};

// One worker's tallies. "Window" counts cover [window_start, window_end) only.
struct Counters {
  std::uint64_t connect_errors = 0;    // connect() failed (retried up to a bound)
  std::uint64_t handshake_errors = 0;  // answer to the upgrade was not a valid 101
  std::uint64_t protocol_errors = 0;   // invalid server frame or undecodable JSON
  std::uint64_t socket_errors = 0;     // read/write errors on open sessions
  std::uint64_t eof_closes = 0;        // session ended without a close frame from the server
  std::uint64_t server_closes = 0;     // close frames received from the server
  std::uint64_t frames_total = 0;      // data messages received, whole run
  std::uint64_t queued_messages = 0;   // `queued` answers (the room was full)
  std::uint64_t pings_answered = 0;
  std::uint64_t errors_received = 0;    // `error` messages
  std::uint64_t unrequested_syncs = 0;  // syncs the server sent on its own (slow client)
  std::uint64_t tick_gaps = 0;          // window: a delta whose tick is not the previous one + 1
  std::uint64_t model_anomalies = 0;    // update/left for a member the client never saw join
  std::uint64_t foreign_entries = 0;    // entries for users that are not the generator's
  std::uint64_t updates_sent_total = 0;
  std::uint64_t updates_skipped = 0;   // not sent: the session's unsent bytes were over the bound
  std::uint64_t send_late_us_max = 0;  // how far behind schedule a send went out
  // window
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  std::uint64_t deltas = 0;
  std::uint64_t deliveries = 0;
  std::uint64_t updates_sent = 0;
  std::uint64_t client_deltas_per_s_max = 0;  // over clients and whole seconds
  std::vector<std::uint64_t> frames_per_second;
  Histogram latency_us;  // presence: stamp to receipt; chat: client_id's send time to receipt
  // chat
  std::uint64_t chat_sent_total = 0;
  std::uint64_t chat_sent = 0;         // window
  std::uint64_t chat_skipped = 0;      // not sent: unsent bytes or unanswered messages at the bound
  std::uint64_t acks_total = 0;        // own messages seen in the broadcast
  std::uint64_t acks = 0;              // window
  std::uint64_t chat_refused = 0;      // own messages answered with an error (its ref)
  std::uint64_t acks_without_seq = 0;  // own message broadcast without a seq
  std::uint64_t duplicate_answers = 0;   // a message answered twice (ack or error)
  std::uint64_t unknown_answers = 0;     // an answer for a number this client never sent
  std::uint64_t unanswered = 0;          // sent, never answered by the end
  std::uint64_t seq_gaps = 0;            // a seq more than one above the previous one seen
  std::uint64_t seq_not_increasing = 0;  // a seq at or below the previous one seen
  std::uint64_t foreign_chat = 0;        // chat messages without a client_id of ours
  Histogram ack_latency_us;              // window
  // TLS
  TlsTally tls;  // with --tls
  // convergence
  std::uint64_t probes_sent = 0;
  std::uint64_t clients_compared = 0;    // clients whose room has a truth
  std::uint64_t clients_mismatched = 0;  // compared, never equal to the truth by the deadline
  std::uint64_t entries_mismatched = 0;
  std::uint64_t clients_unchecked = 0;  // open, but their room's sync never came
  std::map<std::uint16_t, std::uint64_t> close_codes;
  std::map<std::string, std::uint64_t> error_codes;
  std::map<int, std::uint64_t> handshake_statuses;

  void merge(const Counters& o) {
    connect_errors += o.connect_errors;
    handshake_errors += o.handshake_errors;
    protocol_errors += o.protocol_errors;
    socket_errors += o.socket_errors;
    eof_closes += o.eof_closes;
    server_closes += o.server_closes;
    frames_total += o.frames_total;
    queued_messages += o.queued_messages;
    pings_answered += o.pings_answered;
    errors_received += o.errors_received;
    unrequested_syncs += o.unrequested_syncs;
    tick_gaps += o.tick_gaps;
    model_anomalies += o.model_anomalies;
    foreign_entries += o.foreign_entries;
    updates_sent_total += o.updates_sent_total;
    updates_skipped += o.updates_skipped;
    send_late_us_max = std::max(send_late_us_max, o.send_late_us_max);
    frames += o.frames;
    bytes += o.bytes;
    deltas += o.deltas;
    deliveries += o.deliveries;
    updates_sent += o.updates_sent;
    client_deltas_per_s_max = std::max(client_deltas_per_s_max, o.client_deltas_per_s_max);
    if (frames_per_second.size() < o.frames_per_second.size()) {
      frames_per_second.resize(o.frames_per_second.size());
    }
    for (std::size_t i = 0; i < o.frames_per_second.size(); ++i) {
      frames_per_second[i] += o.frames_per_second[i];
    }
    latency_us.merge(o.latency_us);
    chat_sent_total += o.chat_sent_total;
    chat_sent += o.chat_sent;
    chat_skipped += o.chat_skipped;
    acks_total += o.acks_total;
    acks += o.acks;
    chat_refused += o.chat_refused;
    acks_without_seq += o.acks_without_seq;
    duplicate_answers += o.duplicate_answers;
    unknown_answers += o.unknown_answers;
    unanswered += o.unanswered;
    seq_gaps += o.seq_gaps;
    seq_not_increasing += o.seq_not_increasing;
    foreign_chat += o.foreign_chat;
    ack_latency_us.merge(o.ack_latency_us);
    tls.merge(o.tls);
    probes_sent += o.probes_sent;
    clients_compared += o.clients_compared;
    clients_mismatched += o.clients_mismatched;
    entries_mismatched += o.entries_mismatched;
    clients_unchecked += o.clients_unchecked;
    for (const auto& [k, v] : o.close_codes) close_codes[k] += v;
    for (const auto& [k, v] : o.error_codes) error_codes[k] += v;
    for (const auto& [k, v] : o.handshake_statuses) handshake_statuses[k] += v;
  }
};

struct Shared {
  Settings settings;
  std::atomic<int> phase{static_cast<int>(Phase::kConnect)};
  std::atomic<std::int64_t> window_start_ns{std::numeric_limits<std::int64_t>::max()};
  std::atomic<std::int64_t> window_end_ns{std::numeric_limits<std::int64_t>::max()};
  std::atomic<std::uint64_t> ready{0};   // sessions that got their welcome
  std::atomic<std::uint64_t> failed{0};  // sessions given up on while connecting
  std::atomic<std::int64_t> tick_ms{-1};
  std::atomic<std::uint32_t> workers_at_phase{0};  // workers done with the current phase's step
  std::atomic<std::uint64_t> probes_sent{0};
  std::atomic<std::uint64_t> synced{0};                // rooms whose truth is set
  std::atomic<std::uint64_t> to_settle{0};             // open clients when kSettle began
  std::atomic<std::uint64_t> settled{0};               // of those, converged so far
  std::vector<RoomModel> truth;                        // per room: the probe's sync
  std::vector<std::atomic<std::uint8_t>> truth_ready;  // per room: 1 once truth[room] is set

  Phase current() const { return static_cast<Phase>(phase.load(std::memory_order_acquire)); }
};

}  // namespace rc::load
