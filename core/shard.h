#pragma once
// A shard: one thread, one io_uring, one listener, its own connections.
//
// Contract
// - Everything here except ShardGroup::post()/wake_all() and the relaxed
//   counters of ShardStats runs on the shard's own thread. Connections, their
//   send queues and the ShardApp belong to the shard and never cross threads;
//   a connection moves to another shard only through handoff(), which sends
//   its file descriptor and unread bytes through that shard's mailbox.
// - The loop, once per turn: submit + wait (one io_uring_enter) until a
//   completion, the next tick or the next sweep; dispatch completions;
//   drain the mailbox; run the tick and the once-a-second sweep when due;
//   ShardApp::on_loop_end(); then queue one send (or sendmsg) per connection with
//   unsent frames. Sends are therefore batched per loop turn.
// - Receiving: multishot recv into the shard's provided buffer ring; an idle
//   connection holds no receive buffer. Bytes the app did not consume stay in
//   a per-connection input buffer that exists only while it holds bytes.
//   Every byte range given to ShardApp::on_data is followed by at least
//   limits::read_padding_bytes readable bytes (simdjson reads past the end).
// - Closing: close() detaches the app at once (no further callbacks for that
//   connection); the core flushes what is queued, shuts down the write side,
//   reads and discards until EOF (at most linger_ms), then closes the fd.
//   on_closed() is called only for closes the app did not ask for (EOF,
//   reset, send error, input overflow), exactly once.

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/frame.h"
#include "core/limits.h"
#include "core/metrics.h"
#include "core/mpsc_queue.h"
#include "core/ring.h"
#include "core/status.h"

namespace rc {

namespace tls {
class ServerContext;
}

// (generation << 32) | slot. 0 is never a live connection.
using ConnId = std::uint64_t;

enum class CloseReason : std::uint8_t { kPeerEof, kError, kOverflow, kShutdown };

class Shard;
class ShardGroup;

// Counters of one shard, written by that shard only, read by any (metrics).
struct ShardStats {
  Counter connections;  // open TCP connections
  Counter sessions;     // open WebSocket sessions (queued included)
  Counter rooms;
  Counter accepted_total;
  Counter bytes_in_total;
  Counter bytes_out_total;
  Counter frames_out_total;
  Counter loop_iterations_total;
  Counter submits_total;
  Counter recv_nobufs_total;
  Counter heap_trims_total;
  Counter handoffs_total;
};

// Unread bytes that travel with a connection (handoff) or wait for more.
struct InputBuffer {
  std::uint8_t* data = nullptr;
  std::uint32_t size = 0;
  std::uint32_t capacity = 0;  // excluding the read padding
};

// Cross-shard message. Plain data: pointers in it are owned by the receiver
// once popped (the sender gives them up in post()).
struct Mail {
  enum class Kind : std::uint8_t { kAdopt, kShutdown, kApp };
  Kind kind = Kind::kApp;
  std::int32_t fd = -1;
  std::uint32_t app_kind = 0;
  InputBuffer input;        // kAdopt: bytes read after the request head
  void* payload = nullptr;  // kAdopt/kApp: app-defined, owned by the receiver
  void* tls = nullptr;      // kAdopt: the connection's tls::Session, if any
};

// What a shard asks of the application layer (rooms/). Called on the shard
// thread only.
class ShardApp {
 public:
  virtual ~ShardApp() = default;
  // A new TCP connection accepted by this shard.
  virtual void on_open(ConnId id) = 0;
  // Bytes from the connection. Returns how many were consumed; the rest is
  // offered again with more bytes appended. May call send/close/handoff.
  virtual std::size_t on_data(ConnId id, std::uint8_t* data, std::size_t len) = 0;
  // The connection went away without the app asking (see the header comment).
  virtual void on_closed(ConnId id, CloseReason why) = 0;
  // A connection handed to this shard by handoff(); payload as given there.
  // Its carried bytes follow through on_data.
  virtual void on_adopt(ConnId id, void* payload) = 0;
  // An app mail (Mail::Kind::kApp) for this shard.
  virtual void on_mail(Mail& mail) = 0;
  // The send queue of id dropped below the low-water mark given to watch_drain.
  virtual void on_drained(ConnId id) = 0;
  virtual void on_tick(std::int64_t now_ms) = 0;
  // Once a second: timeouts, pings.
  virtual void on_sweep(std::int64_t now_ms) = 0;
  // Once per loop turn, after every completion and mail of the turn.
  virtual void on_loop_end(std::int64_t now_ms) = 0;
  // SIGTERM/SIGINT: close sessions. The shard stops when live() is 0 or the
  // shutdown deadline passes.
  virtual void on_shutdown(std::int64_t now_ms) = 0;
  virtual std::size_t live() const = 0;
};

struct ShardOptions {
  std::uint32_t index = 0;
  std::string bind = "0.0.0.0";
  std::uint16_t port = 8080;
  bool pin = false;
  std::uint32_t tick_ms = 50;
  std::uint32_t input_bytes_max = 8192 + 64;  // per connection, unread bytes
  std::uint32_t linger_ms = 2000;
  // Set: every connection speaks TLS (https/wss). Shared, read-only.
  const tls::ServerContext* tls = nullptr;
};

class Shard {
 public:
  Shard(ShardGroup& group, ShardOptions opts);
  ~Shard();

  // ---- used by the app, on this shard's thread
  std::uint32_t index() const { return opts_.index; }
  const ShardOptions& options() const { return opts_; }
  ShardGroup& group() { return group_; }
  ShardStats& stats();
  std::int64_t now_ms() const { return now_ms_; }
  std::int64_t tick_number() const { return tick_number_; }

  // Queues a frame; returns the connection's unsent bytes after it (0 when
  // the connection is not open).
  std::uint64_t send(ConnId id, FrameRef frame);
  std::uint64_t unsent_bytes(ConnId id) const;
  // Calls on_drained(id) once when unsent bytes fall below low_water_bytes.
  void watch_drain(ConnId id, std::uint64_t low_water_bytes);
  // Switches the connection from one-shot reads (HTTP) to multishot (WebSocket).
  void set_streaming(ConnId id);
  // Graceful close (flush, shut down writes, linger, close). Detaches the app.
  void close(ConnId id);
  // Moves the connection to another shard (see the header comment), once
  // transport bytes still queued (a TLS handshake's last flight) are sent. The
  // app must not have sent anything on it and lets go of it at once. If the
  // target's mailbox is full at that moment the connection is dropped (and
  // logged), and this shard's app gets the payload back through
  // on_adopt(0, payload) to free it.
  void handoff(ConnId id, std::uint32_t target_shard, void* payload);
  bool is_open(ConnId id) const;
  // One pointer of app state per connection (nullptr until set).
  void set_app_data(ConnId id, void* data);
  void* app_data(ConnId id) const;
  std::string peer(ConnId id) const;

  // Posts to another shard from this shard's thread (wake-up via msg_ring).
  bool post(std::uint32_t target_shard, Mail&& mail);

  // ---- used by ShardGroup
  void run(std::function<std::unique_ptr<ShardApp>(Shard&)> make_app);
  bool deliver_mail(Mail&& mail);  // any thread
  void wake_from_outside();        // any thread: eventfd
  int ring_fd() const { return ring_fd_.load(std::memory_order_acquire); }

 private:
  struct Conn;
  struct SendNode;
  struct SendOp;
  struct Impl;
  friend struct Impl;
  friend class ShardGroup;
  ShardGroup& group_;
  ShardOptions opts_;
  std::unique_ptr<Impl> impl_;
  std::int64_t now_ms_ = 0;
  std::int64_t tick_number_ = 0;
  std::atomic<int> ring_fd_{-1};
};

// All shards of the process.
class ShardGroup {
 public:
  ShardGroup(std::uint32_t count, const ShardOptions& base);
  ~ShardGroup();
  std::uint32_t size() const { return static_cast<std::uint32_t>(shards_.size()); }
  Shard& shard(std::uint32_t i) { return *shards_[i]; }
  ShardStats& stats(std::uint32_t i) { return stats_[i]; }

  // Starts one thread per shard; returns once every shard listens (or one failed).
  Status start(std::function<std::unique_ptr<ShardApp>(Shard&)> make_app);
  // Begins the graceful shutdown: every shard gets a kShutdown mail.
  void begin_shutdown(std::int64_t deadline_ms);
  bool shutting_down() const { return shutting_down_.load(std::memory_order_acquire); }
  std::int64_t shutdown_deadline_ms() const { return deadline_ms_.load(std::memory_order_acquire); }
  // Waits for every shard thread to end.
  void join();
  // True once join() returned: no shard reads its mailbox any more.
  bool joined() const { return joined_.load(std::memory_order_acquire); }
  // After join(): hands every mail still queued to fn (whose payloads it owns).
  void drain_mail(const std::function<void(Mail&)>& fn);

  // Any thread: posts to a shard's mailbox and wakes it.
  bool post(std::uint32_t target, Mail&& mail);

  // Called by shards during start-up.
  void report_ready(std::uint32_t index, Status status);

 private:
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<ShardStats[]> stats_;
  std::vector<std::thread> threads_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> joined_{false};
  std::atomic<std::int64_t> deadline_ms_{0};
  struct StartState;
  std::unique_ptr<StartState> start_;
};

// Milliseconds of CLOCK_MONOTONIC (timers) and of the wall clock (timestamps).
std::int64_t monotonic_ms();
std::int64_t monotonic_us();
std::int64_t wall_ms();

}  // namespace rc
