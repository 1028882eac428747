// A shard's thread from start to end: set-up, the loop, completion dispatch,
// the mailbox, and teardown.

#include <fmt/format.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

#include "core/log.h"
#include "core/shard_impl.h"

namespace rc {

void Shard::run(std::function<std::unique_ptr<ShardApp>(Shard&)> make_app) {
  log::set_thread_name(fmt::format("shard {}", opts_.index));
  if (opts_.pin) {
    cpu_set_t set;
    CPU_ZERO(&set);
    unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    CPU_SET(opts_.index % cpus, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
      RC_WARN("could not pin shard {} to core {}", opts_.index, opts_.index % cpus);
    }
  }
  Status st = impl_->setup();
  if (!st) {
    group_.report_ready(opts_.index, st);
    impl_->teardown();
    return;
  }
  impl_->app = make_app(*this);
  impl_->arm_accept();
  impl_->arm_eventfd();
  ring_fd_.store(impl_->ring->fd(), std::memory_order_release);
  group_.report_ready(opts_.index, Status::ok());
  impl_->loop();
  ring_fd_.store(-1, std::memory_order_release);
  impl_->teardown();
}

// ---- set-up

Status Shard::Impl::listen() {
  Result<int> fd = open_listener(s.opts_.bind, s.opts_.port, /*reuse_port=*/true);
  if (!fd) return fd.status();
  listen_fd = *fd;
  return Status::ok();
}

Status Shard::Impl::setup() {
  auto r = Ring::create(limits::ring_entries);
  if (!r) return r.status();
  ring = std::move(*r);
  Status st = ring->register_buffers(kBufferGroup, limits::recv_buffers_per_shard,
                                     limits::recv_buffer_bytes, limits::read_padding_bytes);
  if (!st) return st;
  // The table may not be longer than RLIMIT_NOFILE; connections past it use
  // their plain fd.
  rlimit files{};
  std::uint32_t slots = limits::registered_files_per_shard;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < slots) {
    slots = static_cast<std::uint32_t>(files.rlim_cur);
  }
  if (Status fixed = ring->register_files(slots); !fixed) {
    RC_WARN("shard {}: {}; sockets are named by fd", s.opts_.index, fixed.message());
  }
  st = listen();
  if (!st) return st;
  event_fd = eventfd(0, EFD_CLOEXEC);
  if (event_fd < 0) return Status::error(fmt::format("eventfd: {}", std::strerror(errno)));
  if (s.opts_.tls != nullptr) tls_thread = std::make_unique<tls::ThreadContext>(*s.opts_.tls);
  return Status::ok();
}

void Shard::Impl::arm_accept() {
  ring->accept_multishot(listen_fd, pack(kOpAccept, 0, 0));
  accept_armed = true;
}

void Shard::Impl::arm_eventfd() {
  ring->read(event_fd, &event_value, sizeof event_value, pack(kOpEventfd, 0, 0));
}

// ---- completions

void Shard::Impl::dispatch(const Completion& c) {
  switch (op_of(c.user_data)) {
    case kOpAccept:
      on_accept(c);
      break;
    case kOpRecv:
      on_recv(c);
      break;
    case kOpSend:
      on_send(c);
      break;
    case kOpEventfd:
      wake_pending.store(false, std::memory_order_release);
      arm_eventfd();
      break;
    case kOpWake:
      wake_pending.store(false, std::memory_order_release);
      break;
    case kOpCancel:
      break;
    case kOpFiles:
      // Only failures complete (IOSQE_CQE_SKIP_SUCCESS); the connection's
      // next receive or send then fails and closes it.
      RC_WARN("registering a socket failed: {}", std::strerror(-c.res));
      break;
    case kOpNone:
      if (c.res < 0) RC_WARN("a cross-shard wake-up failed: {}", std::strerror(-c.res));
      break;
  }
}

// ---- mailbox and loop

void Shard::Impl::drain_mailbox() {
  Mail m;
  while (mailbox.try_pop(m)) {
    switch (m.kind) {
      case Mail::Kind::kAdopt:
        adopt(m);
        break;
      case Mail::Kind::kShutdown:
        if (!shutdown_seen) {
          shutdown_seen = true;
          app->on_shutdown(s.now_ms_);
        }
        break;
      case Mail::Kind::kApp:
        app->on_mail(m);
        break;
    }
  }
}

void Shard::Impl::rearm_pending() {
  for (ConnId id : rearm) {
    Conn* k = lookup(id);
    if (k != nullptr && !k->recv_armed &&
        (k->state == Conn::kOpen || k->state == Conn::kDraining || k->state == Conn::kLinger)) {
      arm_recv(k, static_cast<std::uint32_t>(id));
    }
  }
  rearm.clear();
}

bool Shard::Impl::done(std::int64_t now) {
  if (!shutdown_seen) return false;
  if (now >= s.group_.shutdown_deadline_ms()) return true;
  return app->live() == 0 && slots_used == 0;
}

void Shard::Impl::loop() {
  std::int64_t now = monotonic_ms();
  s.now_ms_ = now;
  std::int64_t next_tick = now + s.opts_.tick_ms;
  std::int64_t next_sweep = now + kSweepIntervalMs;
  while (true) {
    // While shutting down, timeouts are swept (and progress checked) often.
    if (shutdown_seen) next_sweep = std::min(next_sweep, now + kShutdownPollMs);
    std::int64_t due = std::min(next_tick, next_sweep);
    std::int64_t wait_ms = std::max<std::int64_t>(0, due - now);
    ring->submit_and_wait(std::chrono::milliseconds(wait_ms));
    now = monotonic_ms();
    s.now_ms_ = now;
    stats().loop_iterations_total.add();
    std::uint32_t n;
    while ((n = ring->reap(batch, kReapBatch)) > 0) {
      for (std::uint32_t i = 0; i < n; ++i) dispatch(batch[i]);
    }
    drain_mailbox();
    if (now >= next_tick) {
      ++s.tick_number_;
      app->on_tick(now);
      next_tick += s.opts_.tick_ms;
      if (next_tick <= now) next_tick = now + s.opts_.tick_ms;
    }
    if (now >= next_sweep) {
      sweep_closing(now);
      app->on_sweep(now);
      settle_heap();
      next_sweep = now + kSweepIntervalMs;
    }
    app->on_loop_end(now);
    rearm_pending();
    flush_sends();
    close_fds();
    if (!accept_armed && !shutdown_seen) arm_accept();
    stats().submits_total.set(ring->submit_calls());
    if (done(now)) break;
  }
}

void Shard::Impl::teardown() {
  // Mail that arrived during the last turn still owns its payloads: the app
  // frees what it made (chat log replies), connections are closed below.
  if (app) {
    Mail m;
    while (mailbox.try_pop(m)) {
      if (m.kind == Mail::Kind::kApp) {
        app->on_mail(m);
      } else if (m.kind == Mail::Kind::kAdopt) {
        drop_adopt_mail(m);
      }
    }
  }
  app.reset();
  close_fds();
  for (std::uint32_t c = 0; c < chunks.size(); ++c) {
    for (std::uint32_t i = 0; i < kChunkSlots; ++i) {
      Conn& k = chunks[c][i];
      if (k.fd >= 0) ::close(k.fd);
      free_input(&k);
      delete k.tls;
      k.tls = nullptr;
      if (k.send_op != nullptr) {  // freed once the ring is gone (below)
        k.send_op->next_free = free_ops;
        free_ops = std::exchange(k.send_op, nullptr);
      }
    }
  }
  if (listen_fd >= 0) ::close(listen_fd);
  if (event_fd >= 0) ::close(event_fd);
  Mail m;
  while (mailbox.try_pop(m)) {
    if (m.kind == Mail::Kind::kAdopt)
      drop_adopt_mail(m);  // no app left: its payload is not ours to free
  }
  // The kernel is done with every send once the ring is closed.
  ring.reset();
  while (free_ops != nullptr) delete std::exchange(free_ops, free_ops->next_free);
}

}  // namespace rc
