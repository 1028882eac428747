// rollcall: load the configuration, start the shards, wait for a signal, shut
// down in order (PROTOCOL section 6).

#include <signal.h>

#include <cstdio>
#include <memory>

#include "core/config.h"
#include "core/log.h"
#include "core/shard.h"
#include "rooms/app.h"
#include "rooms/context.h"

namespace {

// Blocks the shutdown signals in this thread and every thread it starts, so
// that only the main thread's sigwait sees them.
sigset_t block_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

int run(const rc::Config& cfg) {
  sigset_t signals = block_signals();
  rc::ShardOptions base;
  base.bind = cfg.bind;
  base.port = cfg.port;
  base.pin = cfg.pin;
  base.tick_ms = cfg.tick_ms;
  // Unread bytes a connection may hold: one whole message with its frame
  // header, or one request head, plus one receive buffer that arrives on top.
  base.input_bytes_max = static_cast<std::uint32_t>(
      std::max<std::size_t>(cfg.max_message_bytes + rc::limits::ws_frame_header_bytes_max,
                            rc::limits::http_head_bytes_max + rc::limits::http_body_bytes_max) +
      rc::limits::recv_buffer_bytes);
  rc::ShardGroup group(cfg.threads, base);
  rc::rooms::Context ctx(cfg, group);
  rc::Status st = group.start([&ctx](rc::Shard& shard) -> std::unique_ptr<rc::ShardApp> {
    return std::make_unique<rc::rooms::App>(ctx, shard);
  });
  if (!st) {
    RC_ERROR("cannot start: {}", st.message());
    group.begin_shutdown(rc::monotonic_ms());
    group.join();
    return 1;
  }
  RC_INFO("listening on {}:{} with {} shard thread(s), tick {} ms", cfg.bind, cfg.port, cfg.threads,
          cfg.tick_ms);
  int sig = 0;
  sigwait(&signals, &sig);
  RC_INFO("{} received: closing sessions (grace {} s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
          cfg.shutdown_grace_s);
  group.begin_shutdown(rc::monotonic_ms() + std::int64_t{cfg.shutdown_grace_s} * 1000);
  group.join();
  RC_INFO("all sessions closed; exiting");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  rc::ConfigOutcome parsed = rc::parse_config(argc, argv);
  if (!parsed.config) {
    std::fputs(parsed.text.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    if (!parsed.text.empty() && parsed.text.back() != '\n') std::fputc('\n', parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  const rc::Config& cfg = *parsed.config;
  rc::log::set_level(cfg.log_level);
  rc::log::set_thread_name("main");
  rc::log::start();
  int rc_code = run(cfg);
  rc::log::stop();
  return rc_code;
}
