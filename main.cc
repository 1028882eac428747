// rollcall: load the configuration, start the shards, wait for a signal, shut
// down in order (PROTOCOL section 6).

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include <chrono>
#include <thread>

#include "core/config.h"
#include "core/log.h"
#include "core/shard.h"
#include "core/tls.h"
#include "persist/log_writer.h"
#include "persist/metrics.h"
#include "protocol/jwt.h"
#include "rooms/app.h"
#include "rooms/context.h"

namespace {

// Blocks the shutdown signals in this thread and every thread it starts, so
// that only the main thread's sigwait sees them. Called before any thread
// exists (the logger's included): a thread that left them unblocked would take
// a signal meant for sigwait and act on its disposition instead (terminate,
// or drop it when the parent started the server with SIGINT ignored, as
// shells do for background jobs). Blocked signals are never dropped, so
// sigwait sees them whatever the inherited disposition.
sigset_t block_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

// Raises the soft limit on open files to the hard one: every session is a
// socket, and the soft default (often 1,024) is far below what a server of
// thousands of classes holds. Returns the limit now in force.
rlim_t raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  return rl.rlim_cur;
}

// Exit statuses: 0 after a clean shutdown, 1 when the server cannot start
// (port taken, io_uring missing), 2 for bad configuration (flags, key, secret).
constexpr int kExitStartFailed = 1;
constexpr int kExitBadConfig = 2;

int run(const rc::Config& cfg, const sigset_t& signals) {
  RC_INFO("open files limit {}", raise_fd_limit());
  std::string jwt_secret;
  if (!cfg.jwt_secret_file.empty()) {
    rc::Result<std::string> secret = rc::jwt::load_secret(cfg.jwt_secret_file);
    if (!secret) {
      RC_ERROR("--jwt-secret-file: {}", secret.status().message());
      return kExitBadConfig;
    }
    jwt_secret = std::move(*secret);
  }
  std::unique_ptr<rc::tls::ServerContext> tls;
  if (!cfg.tls_cert.empty()) {
    auto loaded = rc::tls::ServerContext::load(cfg.tls_cert, cfg.tls_key);
    if (!loaded) {
      RC_ERROR("TLS: {}", loaded.status().message());
      return kExitBadConfig;
    }
    tls = std::move(*loaded);
    RC_INFO("TLS on: {}", tls->summary());
  }
  rc::ShardOptions base;
  base.tls = tls.get();
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

  // The chat log starts first and stops last: shards hand it messages until
  // they have closed every session.
  rc::persist::LogOptions log_opts;
  log_opts.data_dir = cfg.data_dir;
  log_opts.key_file = cfg.chat_key_file;
  log_opts.retention = cfg.chat_retention;
  log_opts.shards = cfg.threads;
  auto deliver = [&group](std::uint32_t shard, std::unique_ptr<rc::persist::LogReply>&& reply) {
    if (group.joined()) {
      reply.reset();  // the shards are gone: nobody is left to tell
      return true;
    }
    rc::Mail m;
    m.kind = rc::Mail::Kind::kApp;
    m.app_kind = rc::rooms::kMailLogReply;
    m.payload = reply.get();
    // The persistence thread may wait: a full mailbox drains within a loop turn.
    for (int attempt = 0; attempt < 5000; ++attempt) {
      if (group.post(shard, std::move(m))) {
        reply.release();
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  };
  rc::Result<std::unique_ptr<rc::persist::LogWriter>> log = rc::persist::LogWriter::open(log_opts, deliver);
  if (!log) {
    RC_ERROR("chat log: {}", log.status().message());
    return kExitBadConfig;
  }
  (*log)->start();
  rc::rooms::Context ctx(cfg, group, **log, jwt_secret);
  ctx.more_metrics = [w = log->get()](std::string& out) { rc::persist::append_metrics(w->stats(), out); };
  rc::Status st = group.start([&ctx](rc::Shard& shard) -> std::unique_ptr<rc::ShardApp> {
    return std::make_unique<rc::rooms::App>(ctx, shard);
  });
  if (!st) {
    RC_ERROR("cannot start: {}", st.message());
    group.begin_shutdown(rc::monotonic_ms());
    group.join();
    (*log)->stop();
    return kExitStartFailed;
  }
  RC_INFO("listening on {}:{} with {} shard thread(s), tick {} ms", cfg.bind, cfg.port, cfg.threads,
          cfg.tick_ms);
  int sig = 0;
  sigwait(&signals, &sig);
  RC_INFO("{} received: closing sessions (grace {} s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
          cfg.shutdown_grace_s);
  group.begin_shutdown(rc::monotonic_ms() + std::int64_t{cfg.shutdown_grace_s} * 1000);
  group.join();
  (*log)->stop();
  // Replies posted while the last shard was stopping.
  group.drain_mail([](rc::Mail& m) {
    if (m.kind == rc::Mail::Kind::kApp && m.app_kind == rc::rooms::kMailLogReply) {
      delete static_cast<rc::persist::LogReply*>(m.payload);
    } else if (m.kind == rc::Mail::Kind::kAdopt) {
      ::close(m.fd);
      std::free(m.input.data);
      delete static_cast<rc::tls::Session*>(m.tls);
      delete static_cast<rc::rooms::UpgradeHandoff*>(m.payload);
    }
  });
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
  sigset_t signals = block_signals();
  rc::log::set_level(cfg.log_level);
  rc::log::set_thread_name("main");
  rc::log::start();
  int rc_code = run(cfg, signals);
  rc::log::stop();
  return rc_code;
}
