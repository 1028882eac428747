// rollcall-load: whole-system load over loopback for rollcall and for the
// plain-broadcast baseline (tools/rollcall-baseline.cc), which it measures the
// same way. See BENCHMARKS.md for how the bench scripts use it.
//
//   rollcall-load presence --rooms R --members M --rate HZ --duration S ...
//   rollcall-load chat --rooms R --members M --rate MSGS_PER_S | --inflight K ...
//   rollcall-load idle --connections N --rooms R --duration S ...
//   rollcall-load handshakes --connections N --concurrency C ...
//   (every mode takes --tls: TLS 1.2 to a server run with --tls-cert/--tls-key)
//
// The main thread parses the flags, starts the workers (tools/load/worker.h),
// moves them through the phases of tools/load/shared.h, samples the server
// process's CPU time and memory when given its pid (tools/load/server_watch.h),
// then merges the workers' counters into one JSON report (stdout) and a
// summary (stderr) (tools/load/report.h, chat_report.h). The handshakes mode
// has its own runner (tools/load/handshakes.h).
// Every run is bounded: by the connect timeout, the warm-up and the duration,
// and by fixed waits for the final sync or chat answers and the close handshakes.

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "tools/load/chat_report.h"
#include "tools/load/handshakes.h"
#include "tools/load/report.h"
#include "tools/load/server_watch.h"
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
// After every sender saw its last answer, the other members' copies of the
// same broadcasts are at most a loop turn behind: this wait covers it.
constexpr std::int64_t kChatTailNs = 300'000'000;

// Where the load goes and how it is run: every mode.
void add_target(CLI::App* cmd, Settings& s) {
  cmd->add_option("--host", s.host, "Server address (127.0.0.0/8 only)")->capture_default_str();
  cmd->add_option("--port", s.port, "Server port")->capture_default_str();
  cmd->add_flag("--tls", s.tls, "Connect with TLS 1.2 (no certificate verification)");
  cmd->add_option("--sources", s.sources, "Source addresses 127.0.0.1..127.0.0.N")
      ->check(CLI::Range(1u, kSourcesMax))
      ->capture_default_str();
  cmd->add_option("--threads", s.threads, "Client threads")
      ->check(CLI::Range(1u, kThreadsMax))
      ->capture_default_str();
  cmd->add_option("--server-pid", s.server_pid,
                  "Report this process's CPU % (and VmRSS) over the window");
}

// The session modes: presence, chat, idle.
void add_sessions(CLI::App* cmd, Settings& s) {
  add_target(cmd, s);
  cmd->add_option("--rooms", s.rooms, "Rooms")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  cmd->add_option("--duration", s.duration_s, "Seconds to measure (presence, chat) or hold (idle)")
      ->check(CLI::Range(0.5, 3600.0))
      ->capture_default_str();
  cmd->add_option("--ramp", s.ramp_per_s, "Connections opened per second")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--room-prefix", s.room_prefix, "Rooms are named PREFIX-0, PREFIX-1, ...")
      ->capture_default_str();
  cmd->add_option("--connect-timeout", s.connect_timeout_s,
                  "Seconds to wait for every session to open")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
}

void add_members(CLI::App* cmd, Settings& s) {
  cmd->add_option("--members", s.members, "Members per room")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  cmd->add_option("--warmup", s.warmup_s, "Seconds of sending before the window")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
}

// Derived settings and the limits of a run. Fails with the reason.
Status prepare(Settings& s) {
  if (Status st = parse_loopback(s.host, s.target); !st) return st;
  for (std::uint32_t i = 0; i < s.sources; ++i) {
    in_addr a{};
    a.s_addr = htonl((127u << 24) | (i + 1));
    s.source_addrs.push_back(a);
  }
  if (s.mode == Mode::kPresence || s.mode == Mode::kChat) {
    s.sessions = std::uint64_t{s.rooms} * s.members;
    s.members_per_room = s.members;
    if (s.mode == Mode::kPresence && s.sessions * s.members > kModelEntriesMax)
      return Status::error("rooms x members^2 is too large to model");
    if (s.mode == Mode::kChat) s.rate_hz = s.chat_rate / static_cast<double>(s.sessions);
  } else {
    s.sessions = s.connections;
    s.members_per_room = (s.connections + s.rooms - 1) / s.rooms;
  }
  const std::uint64_t at_once = s.mode == Mode::kHandshakes ? s.concurrency : s.sessions;
  if (s.sessions > kSessionsPerSourceMax * s.sources && s.mode != Mode::kHandshakes) {
    return Status::error(
        fmt::format("{} sessions need --sources {} or more", s.sessions,
                    (s.sessions + kSessionsPerSourceMax - 1) / kSessionsPerSourceMax));
  }
  const std::uint64_t fds = raise_nofile_limit();
  if (at_once + kFdsReserved > fds) {
    return Status::error(fmt::format("{} sessions need {} file descriptors; the limit is {}",
                                     at_once, at_once + kFdsReserved, fds));
  }
  return Status::ok();
}

// Client k: presence and chat k = room * members + member; idle: round-robin rooms.
void assign(const Settings& s, std::vector<std::unique_ptr<Worker>>& workers) {
  for (auto& w : workers) w->reserve(s.sessions / workers.size() + 1);
  const bool by_room = s.mode == Mode::kPresence || s.mode == Mode::kChat;
  for (std::uint64_t k = 0; k < s.sessions; ++k) {
    std::uint32_t room, member;
    if (by_room) {
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

// Moves the workers to phase p and waits (bounded) until each has done its step.
void step(Shared& sh, std::uint32_t threads, Phase p, std::int64_t timeout_ns) {
  sh.workers_at_phase.store(0);
  sh.phase.store(static_cast<int>(p), std::memory_order_release);
  wait_for([&] { return sh.workers_at_phase.load() >= threads; }, timeout_ns);
}

// The phases after the measuring window (presence only): stop sending, let
// the last deltas go out, have each room's probe ask for a sync, then wait
// (bounded) until every open client's model equals its room's sync.
void converge(Shared& sh, std::uint32_t threads, RunTimes& t) {
  const std::int64_t tick_ms = std::max<std::int64_t>(sh.tick_ms.load(), 0);
  sh.phase.store(static_cast<int>(Phase::kStop), std::memory_order_release);
  // Two ticks for the server's last coalesced deltas, plus scheduling slack.
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * tick_ms + 50));
  const std::int64_t t0 = mono_ns();
  step(sh, threads, Phase::kSync, kStepWaitNs);
  step(sh, threads, Phase::kSettle, kStepWaitNs);
  wait_for([&] { return sh.settled.load(std::memory_order_acquire) >= sh.to_settle.load(); },
           kSettleWaitNs);
  t.settle_s = static_cast<double>(mono_ns() - t0) / 1e9;
  t.rooms_synced = sh.synced.load(std::memory_order_acquire);
  step(sh, threads, Phase::kCompare, kStepWaitNs);
}

// After the chat window: stop sending and wait (bounded by --drain) until
// every worker saw the answers to all its messages, then a little longer for
// the other members' copies.
void drain(Shared& sh, const Settings& s, RunTimes& t) {
  const std::int64_t t0 = mono_ns();
  step(sh, s.threads, Phase::kStop, static_cast<std::int64_t>(s.drain_s * 1e9));
  t.drain_s = static_cast<double>(mono_ns() - t0) / 1e9;
  std::this_thread::sleep_for(std::chrono::nanoseconds(kChatTailNs));
}

// Waits for the sessions to open, noting progress every 2 s.
void wait_open(const Shared& sh, const Settings& s, std::int64_t t0) {
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
}

int run(const Settings& settings) {
  Shared sh;
  sh.settings = settings;
  const Settings& s = sh.settings;
  const bool presence = s.mode == Mode::kPresence;
  const bool chat = s.mode == Mode::kChat;
  if (presence) {
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
  wait_open(sh, s, t0);
  t.connect_s = static_cast<double>(mono_ns() - t0) / 1e9;
  const std::uint64_t open = sh.ready.load();
  ServerSample srv;
  if (open > 0) {
    const bool sends = presence || chat;
    const std::int64_t start =
        mono_ns() + (sends ? static_cast<std::int64_t>(s.warmup_s * 1e9) : 0);
    const std::int64_t end = start + static_cast<std::int64_t>(s.duration_s * 1e9);
    sh.window_start_ns.store(start);
    sh.window_end_ns.store(end);
    sh.phase.store(static_cast<int>(Phase::kRun), std::memory_order_release);
    srv = watch_window(s, start, end);
    t.window_s = static_cast<double>(end - start) / 1e9;
    if (presence) converge(sh, s.threads, t);
    if (chat) drain(sh, s, t);
  }
  step(sh, s.threads, Phase::kClose, kStepWaitNs);
  sh.phase.store(static_cast<int>(Phase::kDone), std::memory_order_release);
  for (auto& th : threads) th.join();

  Counters total;
  std::vector<ChatStream> streams;
  for (auto& w : workers) {
    total.merge(w->counters());
    if (chat) {
      const std::vector<ChatStream> mine = w->chat_streams();
      streams.insert(streams.end(), mine.begin(), mine.end());
    }
  }
  if (chat) {
    const StreamCheck st = compare_streams(streams, s.rooms);
    std::printf("%s\n", chat_report_json(s, sh, total, t, srv, st).c_str());
    std::fflush(stdout);
    chat_report_human(s, sh, total, t, srv, st);
  } else {
    std::printf("%s\n", report_json(s, sh, total, t, srv).c_str());
    std::fflush(stdout);
    report_human(s, sh, total, t, srv);
  }
  return open > 0 ? 0 : 1;
}

}  // namespace
}  // namespace rc::load

int main(int argc, char** argv) {
  using rc::load::Mode;
  using rc::load::Settings;
  signal(SIGPIPE, SIG_IGN);
  Settings presence;
  presence.mode = Mode::kPresence;
  Settings chat;
  chat.mode = Mode::kChat;
  chat.members = 10;
  chat.rooms = 100;
  Settings idle;
  idle.mode = Mode::kIdle;
  idle.duration_s = 10;
  idle.rooms = 100;
  Settings hs;
  hs.mode = Mode::kHandshakes;
  hs.connections = 2000;
  hs.connect_timeout_s = 300;

  CLI::App app{"rollcall-load: loopback load generator for rollcall (and the baseline server)"};
  app.require_subcommand(1);
  CLI::App* p = app.add_subcommand("presence",
                                   "Members send presence updates; measure deliveries and latency");
  rc::load::add_sessions(p, presence);
  rc::load::add_members(p, presence);
  p->add_option("--rate", presence.rate_hz, "Presence updates per member per second")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();

  CLI::App* c = app.add_subcommand(
      "chat", "Members send chat messages; measure durable messages/s, acks and deliveries");
  rc::load::add_sessions(c, chat);
  rc::load::add_members(c, chat);
  c->add_option("--rate", chat.chat_rate,
                "Messages per second over all members (open loop, jittered schedule)")
      ->check(CLI::Range(0.1, 1e7))
      ->capture_default_str();
  c->add_option("--inflight", chat.inflight,
                "Closed loop instead: each member keeps K messages unanswered (--rate ignored)")
      ->check(CLI::Range(0u, static_cast<unsigned>(rc::load::kChatInflightMax)))
      ->capture_default_str();
  c->add_option("--text-bytes", chat.text_bytes, "Text of each message (ASCII)")
      ->check(CLI::Range(1u, static_cast<unsigned>(rc::load::kChatTextBytesMax)))
      ->capture_default_str();
  c->add_option("--drain", chat.drain_s, "Longest wait for the last answers after the window")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();

  CLI::App* i = app.add_subcommand("idle", "Open sessions and hold them, answering pings");
  rc::load::add_sessions(i, idle);
  i->add_option("--connections", idle.connections, "Sessions to open")
      ->check(CLI::Range(1u, 5000000u))
      ->capture_default_str();

  CLI::App* h = app.add_subcommand(
      "handshakes", "Connect, (TLS handshake,) GET /healthz, close: as fast as possible");
  rc::load::add_target(h, hs);
  h->add_option("--connections", hs.connections, "Connections to make in all")
      ->check(CLI::Range(1u, 10000000u))
      ->capture_default_str();
  h->add_option("--concurrency", hs.concurrency, "Connections under way at once")
      ->check(CLI::Range(1u, 10000u))
      ->capture_default_str();
  h->add_option("--timeout", hs.connect_timeout_s, "Seconds the whole run may take")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  Settings s = p->parsed() ? presence : c->parsed() ? chat : i->parsed() ? idle : hs;
  if (rc::Status st = rc::load::prepare(s); !st) {
    std::fprintf(stderr, "rollcall-load: %s\n", st.message().c_str());
    return 2;
  }
  if (s.mode == Mode::kHandshakes) return rc::load::run_handshakes(s);
  return rc::load::run(s);
}
