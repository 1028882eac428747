#include "core/shard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fmt/format.h>
#include <mutex>
#include <utility>

#include "core/log.h"
#include "core/tls.h"

namespace rc {

std::int64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::int64_t monotonic_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

std::int64_t wall_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

namespace {

// user_data layout: op (8 bits) | generation (24 bits) | slot (32 bits).
enum Op : std::uint8_t {
  kOpNone = 0,
  kOpAccept,
  kOpRecv,
  kOpSend,
  kOpCancel,
  kOpEventfd,
  kOpWake,
};
constexpr std::uint32_t kGenMask = 0xffffff;
constexpr std::uint32_t kChunkSlots = 1024;
constexpr std::uint16_t kBufferGroup = 0;
constexpr std::uint32_t kReapBatch = 256;
constexpr std::uint32_t kFreeOpsKept = 256;  // send ops always kept for reuse
// A burst that makes settle_heap give memory back.
constexpr std::size_t kTrimAfterFreedBytes = 4u << 20;
constexpr std::uint32_t kTrimAfterReleasedConns = 1000;
constexpr int kListenBacklog = 4096;

std::uint64_t pack(Op op, std::uint32_t slot, std::uint32_t gen) {
  return (static_cast<std::uint64_t>(op) << 56) |
         (static_cast<std::uint64_t>(gen & kGenMask) << 32) | slot;
}
Op op_of(std::uint64_t ud) { return static_cast<Op>(ud >> 56); }
std::uint32_t slot_of(std::uint64_t ud) { return static_cast<std::uint32_t>(ud); }
std::uint32_t gen_of(std::uint64_t ud) { return static_cast<std::uint32_t>(ud >> 32) & kGenMask; }
ConnId make_id(std::uint32_t slot, std::uint32_t gen) {
  return (static_cast<std::uint64_t>(gen) << 32) | slot;
}

// A listening socket on bind:port. With reuse_port every shard binds the same
// port and the kernel spreads new connections over them.
Result<int> open_listener(const std::string& bind, std::uint16_t port, bool reuse_port) {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  int family = AF_INET;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, bind.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    addr_len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, bind.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    addr_len = sizeof(sockaddr_in6);
  } else {
    return Status::error(fmt::format("--bind {}: not an IPv4 or IPv6 address", bind));
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::error(fmt::format("socket: {}", std::strerror(errno)));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) < 0 || ::listen(fd, kListenBacklog) < 0) {
    Status st = Status::error(fmt::format("cannot listen on {}:{}: {}", bind, port, std::strerror(errno)));
    ::close(fd);
    return st;
  }
  return fd;
}

}  // namespace

struct Shard::SendNode {
  FrameRef frame;
  SendNode* next = nullptr;
  bool cipher = false;  // TLS: already encrypted (or not a TLS connection's plaintext)
};

struct Shard::SendOp {
  msghdr msg{};
  iovec iov[limits::send_iovecs_max];
  SendOp* next_free = nullptr;
};

struct Shard::Conn {
  enum State : std::uint8_t { kFree, kOpen, kDraining, kLinger, kDead, kHandoff };
  int fd = -1;
  std::uint32_t gen = 0;
  State state = kFree;
  bool recv_armed = false;
  bool streaming = false;
  bool dirty = false;
  bool drain_watch = false;
  bool closing_listed = false;
  std::uint32_t head_offset = 0;
  SendOp* send_op = nullptr;
  SendNode* head = nullptr;
  SendNode* tail = nullptr;
  std::uint64_t unsent = 0;
  std::uint64_t low_water = 0;
  InputBuffer input;
  void* app_data = nullptr;
  tls::Session* tls = nullptr;
  std::int64_t close_deadline_ms = 0;
  // handoff, between handoff() and the end of on_data
  std::uint32_t handoff_target = 0;
  void* handoff_payload = nullptr;
};

struct Shard::Impl {
  Shard& s;
  std::unique_ptr<Ring> ring;
  std::unique_ptr<ShardApp> app;
  MpscQueue<Mail, limits::mailbox_slots> mailbox;
  std::atomic<bool> wake_pending{false};
  int event_fd = -1;
  std::uint64_t event_value = 0;
  int listen_fd = -1;
  std::vector<std::unique_ptr<Conn[]>> chunks;
  std::vector<std::uint32_t> free_slots;
  std::uint32_t slots_used = 0;
  std::vector<std::uint32_t> dirty;
  std::vector<ConnId> rearm;
  std::vector<ConnId> closing;
  std::vector<int> closing_fds;
  SendNode* free_nodes = nullptr;
  SendOp* free_ops = nullptr;
  std::vector<std::unique_ptr<SendNode[]>> node_chunks;
  std::uint32_t free_op_count = 0;
  std::uint32_t ops_in_use = 0;
  std::uint32_t ops_peak = 0;  // most ops in use at once since the last trim_free_ops
  std::size_t freed_since_trim = 0;     // see settle_heap
  std::uint32_t released_since_trim = 0;
  std::uint32_t released_since_sweep = 0;
  bool shutdown_seen = false;
  bool accept_armed = false;
  std::unique_ptr<tls::ThreadContext> tls_thread;
  std::string tls_plain;  // scratch for decrypted bytes
  Completion batch[kReapBatch];

  explicit Impl(Shard& shard) : s(shard) {}
  ShardStats& stats() { return s.stats(); }

  // ---- connection table
  Conn* slot_ptr(std::uint32_t slot) {
    std::uint32_t chunk = slot / kChunkSlots;
    if (chunk >= chunks.size()) return nullptr;
    return &chunks[chunk][slot % kChunkSlots];
  }
  Conn* lookup(ConnId id) {
    Conn* k = slot_ptr(static_cast<std::uint32_t>(id));
    if (k == nullptr || k->state == Conn::kFree || k->gen != (id >> 32)) return nullptr;
    return k;
  }
  ConnId id_of(Conn* k, std::uint32_t slot) const { return make_id(slot, k->gen); }
  Conn* allocate(std::uint32_t& slot_out) {
    if (free_slots.empty()) {
      if (chunks.size() * kChunkSlots >= limits::connections_per_shard_max) return nullptr;
      std::uint32_t base = static_cast<std::uint32_t>(chunks.size()) * kChunkSlots;
      chunks.emplace_back(new Conn[kChunkSlots]);
      for (std::uint32_t i = kChunkSlots; i-- > 0;) free_slots.push_back(base + i);
    }
    std::uint32_t slot = free_slots.back();
    free_slots.pop_back();
    Conn* k = slot_ptr(slot);
    std::uint32_t gen = (k->gen + 1) & kGenMask;
    *k = Conn{};
    k->gen = gen == 0 ? 1 : gen;
    k->state = Conn::kOpen;
    ++slots_used;
    stats().connections.add();
    slot_out = slot;
    return k;
  }

  void release_slot(Conn* k, std::uint32_t slot) {
    RC_ASSERT(k->send_op == nullptr && !k->recv_armed);
    drop_queue(k);
    free_input(k);
    delete k->tls;
    std::uint32_t gen = k->gen;
    *k = Conn{};
    k->gen = gen;
    free_slots.push_back(slot);
    --slots_used;
    ++released_since_sweep;
    stats().connections.sub();
  }

  // ---- send queue nodes and ops (pools grow in chunks, never shrink)
  SendNode* node() {
    if (free_nodes == nullptr) {
      constexpr std::size_t n = 1024;
      node_chunks.emplace_back(new SendNode[n]);
      SendNode* c = node_chunks.back().get();
      for (std::size_t i = 0; i < n; ++i) {
        c[i].next = free_nodes;
        free_nodes = &c[i];
      }
    }
    SendNode* nd = free_nodes;
    free_nodes = nd->next;
    nd->next = nullptr;
    nd->cipher = false;
    return nd;
  }
  void free_node(SendNode* nd) {
    nd->frame.reset();
    nd->next = free_nodes;
    free_nodes = nd;
  }
  // Ops are allocated one by one and kept on a free list that follows the
  // traffic: settle_heap trims it once a second to what the busiest moment
  // of that second needed (a join storm has one op in flight per connection
  // at once; steady ticks need the same number every tick).
  SendOp* op() {
    if (++ops_in_use > ops_peak) ops_peak = ops_in_use;
    if (free_ops == nullptr) return new SendOp;
    SendOp* o = free_ops;
    free_ops = o->next_free;
    --free_op_count;
    return o;
  }
  void free_op(SendOp* o) {
    --ops_in_use;
    o->next_free = free_ops;
    free_ops = o;
    ++free_op_count;
  }
  // Frees the ops the last second did not need; returns the bytes freed.
  std::size_t trim_free_ops() {
    const std::uint32_t keep = std::max(kFreeOpsKept, ops_peak);
    std::size_t freed = 0;
    while (free_op_count > keep) {
      delete std::exchange(free_ops, free_ops->next_free);
      --free_op_count;
      freed += sizeof(SendOp);
    }
    ops_peak = ops_in_use;
    return freed;
  }
  void drop_queue(Conn* k) {
    while (k->head != nullptr) {
      SendNode* nd = k->head;
      k->head = nd->next;
      free_node(nd);
    }
    k->tail = nullptr;
    k->unsent = 0;
    k->head_offset = 0;
  }

  // ---- input buffer
  static void free_input(Conn* k) {
    std::free(k->input.data);
    k->input = InputBuffer{};
  }
  bool append_input(Conn* k, const std::uint8_t* data, std::size_t len) {
    std::size_t need = k->input.size + len;
    if (need > s.opts_.input_bytes_max) return false;
    if (need > k->input.capacity) {
      std::size_t cap = std::max<std::size_t>(need, std::min<std::size_t>(
                                                        s.opts_.input_bytes_max, k->input.capacity * 2 + 256));
      void* mem = std::realloc(k->input.data, cap + limits::read_padding_bytes);
      if (mem == nullptr) return false;
      k->input.data = static_cast<std::uint8_t*>(mem);
      k->input.capacity = static_cast<std::uint32_t>(cap);
    }
    std::memcpy(k->input.data + k->input.size, data, len);
    k->input.size = static_cast<std::uint32_t>(need);
    std::memset(k->input.data + need, 0, limits::read_padding_bytes);
    return true;
  }
  static void consume_input(Conn* k, std::size_t n) {
    RC_ASSERT(n <= k->input.size);
    if (n == k->input.size) {
      free_input(k);
      return;
    }
    std::memmove(k->input.data, k->input.data + n, k->input.size - n);
    k->input.size -= static_cast<std::uint32_t>(n);
  }

  // ---- set-up
  Status listen() {
    Result<int> fd = open_listener(s.opts_.bind, s.opts_.port, /*reuse_port=*/true);
    if (!fd) return fd.status();
    listen_fd = *fd;
    return Status::ok();
  }

  Status setup() {
    auto r = Ring::create(limits::ring_entries);
    if (!r) return r.status();
    ring = std::move(*r);
    Status st = ring->register_buffers(kBufferGroup, limits::recv_buffers_per_shard,
                                       limits::recv_buffer_bytes, limits::read_padding_bytes);
    if (!st) return st;
    st = listen();
    if (!st) return st;
    event_fd = eventfd(0, EFD_CLOEXEC);
    if (event_fd < 0) return Status::error(fmt::format("eventfd: {}", std::strerror(errno)));
    if (s.opts_.tls != nullptr) tls_thread = std::make_unique<tls::ThreadContext>(*s.opts_.tls);
    return Status::ok();
  }

  void arm_accept() {
    ring->accept_multishot(listen_fd, pack(kOpAccept, 0, 0));
    accept_armed = true;
  }
  void arm_eventfd() { ring->read(event_fd, &event_value, sizeof event_value, pack(kOpEventfd, 0, 0)); }
  void arm_recv(Conn* k, std::uint32_t slot) {
    RC_ASSERT(!k->recv_armed && k->fd >= 0);
    std::uint64_t ud = pack(kOpRecv, slot, k->gen);
    if (k->streaming) {
      ring->recv_multishot(k->fd, kBufferGroup, ud);
    } else {
      ring->recv_once(k->fd, kBufferGroup, ud);
    }
    k->recv_armed = true;
  }

  // ---- completions
  void dispatch(const Completion& c) {
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
      case kOpNone:
        if (c.res < 0) RC_WARN("a cross-shard wake-up failed: {}", std::strerror(-c.res));
        break;
    }
  }

  void on_accept(const Completion& c) {
    if (!c.more()) accept_armed = false;
    if (c.res < 0) {
      if (c.res != -ECANCELED) RC_WARN("accept: {}", std::strerror(-c.res));
      return;
    }
    int fd = c.res;
    std::uint32_t slot;
    Conn* k = allocate(slot);
    if (k == nullptr) {
      ::close(fd);
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    k->fd = fd;
    if (tls_thread) k->tls = new tls::Session(*tls_thread);
    stats().accepted_total.add();
    ConnId id = id_of(k, slot);
    app->on_open(id);
    if (lookup(id) == k && k->state == Conn::kOpen) arm_recv(k, slot);
  }

  void on_recv(const Completion& c) {
    std::uint32_t slot = slot_of(c.user_data);
    Conn* k = slot_ptr(slot);
    std::uint8_t* buf = c.has_buffer() ? ring->buffer(c.buffer_id()) : nullptr;
    RC_ASSERT(k != nullptr && k->gen == gen_of(c.user_data) && k->recv_armed);
    if (!c.more()) k->recv_armed = false;
    ConnId id = id_of(k, slot);
    if (c.res > 0) {
      stats().bytes_in_total.add(static_cast<std::uint64_t>(c.res));
      if (k->state == Conn::kOpen) {
        if (k->tls != nullptr) {
          tls_input(k, slot, buf, static_cast<std::size_t>(c.res));
        } else {
          deliver(k, slot, buf, static_cast<std::size_t>(c.res));
        }
      }
    }
    if (buf != nullptr) ring->recycle_buffer(c.buffer_id());
    if (c.res == 0 || (c.res < 0 && c.res != -ENOBUFS && c.res != -ECANCELED)) {
      if (c.res < 0) RC_DEBUG("recv on connection {}: {}", id, std::strerror(-c.res));
      if (k->state == Conn::kOpen) {
        peer_gone(k, slot, c.res == 0 ? CloseReason::kPeerEof : CloseReason::kError);
      } else if (k->state == Conn::kDraining || k->state == Conn::kLinger) {
        finish_close(k, slot);
      }
    } else if (c.res == -ENOBUFS && k->state != Conn::kDead && k->state != Conn::kHandoff) {
      // The buffer ring ran dry; buffers come back during this turn, so the
      // receive is re-armed at its end rather than spinning on ENOBUFS now.
      stats().recv_nobufs_total.add();
      if (!k->recv_armed) rearm.push_back(id);
      return;
    }
    after_recv(k, slot);
  }

  // Re-arms the receive if the connection still wants one; frees dead slots.
  void after_recv(Conn* k, std::uint32_t slot) {
    switch (k->state) {
      case Conn::kOpen:
      case Conn::kDraining:
      case Conn::kLinger:
        if (!k->recv_armed) arm_recv(k, slot);
        break;
      case Conn::kDead:
        maybe_release(k, slot);
        break;
      case Conn::kHandoff:
        if (k->head == nullptr && k->send_op == nullptr) finish_handoff(k, slot);
        break;
      case Conn::kFree:
        break;
    }
  }

  // Offers bytes to the app until it stops making progress: one read may hold
  // a request head and the first frames after it, which the app consumes in
  // two phases.
  void deliver(Conn* k, std::uint32_t slot, std::uint8_t* data, std::size_t len) {
    ConnId id = id_of(k, slot);
    if (k->input.size == 0) {
      while (len > 0) {
        std::size_t used = app->on_data(id, data, len);
        if (k->state != Conn::kOpen) {
          if (k->state == Conn::kHandoff && used < len && !append_input(k, data + used, len - used)) {
            peer_gone(k, slot, CloseReason::kOverflow);
          }
          return;
        }
        RC_ASSERT(used <= len);
        if (used == 0) break;
        data += used;
        len -= used;
      }
      if (len > 0 && !append_input(k, data, len)) peer_gone(k, slot, CloseReason::kOverflow);
      return;
    }
    if (!append_input(k, data, len)) {
      peer_gone(k, slot, CloseReason::kOverflow);
      return;
    }
    feed_input(k, slot);
  }

  void feed_input(Conn* k, std::uint32_t slot) {
    ConnId id = id_of(k, slot);
    while (k->input.size > 0) {
      std::size_t used = app->on_data(id, k->input.data, k->input.size);
      if (k->state != Conn::kOpen && k->state != Conn::kHandoff) return;
      consume_input(k, used);
      if (used == 0 || k->state != Conn::kOpen) return;
    }
  }

  // ---- TLS: ciphertext in, plaintext to the app through the input buffer;
  // queued plaintext frames are encrypted in queue order at flush time, so
  // TLS records go out in the order they were made.
  void tls_input(Conn* k, std::uint32_t slot, const std::uint8_t* data, std::size_t len) {
    const bool first = !k->tls->handshake_done();
    tls::Session::Result r = k->tls->feed(data, len);
    if (r == tls::Session::Result::kError) {
      if (first && !tls::looks_like_client_hello({data, len})) {
        // Not a TLS client: nothing it could read is sent back.
        RC_DEBUG("connection {}: not TLS on the TLS port", id_of(k, slot));
        peer_gone(k, slot, CloseReason::kError);
        return;
      }
      RC_DEBUG("connection {}: TLS error: {}", id_of(k, slot), k->tls->error());
      tls_end(k, slot, CloseReason::kError);  // with the alert that says why
      return;
    }
    for (;;) {
      tls_plain.clear();
      tls::Session::Result rr = k->tls->read_plain(tls_plain, limits::recv_buffer_bytes);
      if (!tls_plain.empty()) {
        if (!append_input(k, reinterpret_cast<const std::uint8_t*>(tls_plain.data()), tls_plain.size())) {
          peer_gone(k, slot, CloseReason::kOverflow);
          return;
        }
      }
      if (rr == tls::Session::Result::kClosed || rr == tls::Session::Result::kError) r = rr;
      if (rr != tls::Session::Result::kOk || tls_plain.empty()) break;
    }
    if (r == tls::Session::Result::kError) {
      RC_DEBUG("connection {}: TLS error: {}", id_of(k, slot), k->tls->error());
      tls_end(k, slot, CloseReason::kError);
      return;
    }
    if (r == tls::Session::Result::kClosed) {
      if (k->input.size > 0) feed_input(k, slot);  // what came before the close_notify
      if (k->state == Conn::kOpen) tls_end(k, slot, CloseReason::kPeerEof);  // answered by ours
      return;
    }
    tls_flush_output(k, slot);
    if (k->input.size > 0) feed_input(k, slot);
  }

  // Encrypts every plaintext frame still queued, in order.
  // The session ended from the TLS side (an error, or the peer's close_notify):
  // the app lets go of the connection at once, while the engine's last words
  // (an alert, a close_notify) still go out before the socket closes.
  void tls_end(Conn* k, std::uint32_t slot, CloseReason why) {
    tls_flush_output(k, slot);
    if (k->head == nullptr && k->send_op == nullptr) {
      peer_gone(k, slot, why);
      return;
    }
    const ConnId id = id_of(k, slot);
    k->state = Conn::kDraining;
    k->drain_watch = false;
    free_input(k);
    k->close_deadline_ms = s.now_ms_ + s.opts_.linger_ms;
    closing.push_back(id);
    app->on_closed(id, why);
  }

  void tls_encrypt_queue(Conn* k) {
    for (SendNode* nd = k->head; nd != nullptr; nd = nd->next) {
      if (nd->cipher) continue;
      const std::size_t plain = nd->frame.size();
      k->tls->write_plain(nd->frame.data(), plain);
      std::span<const std::uint8_t> out = k->tls->pending_output();
      nd->frame = FrameRef::copy_of({reinterpret_cast<const char*>(out.data()), out.size()});
      k->tls->consumed(out.size());
      nd->cipher = true;
      k->unsent = k->unsent - plain + nd->frame.size();
    }
  }

  // Queues what the TLS engine wants sent (handshake, alerts) after every
  // frame encrypted before it.
  void tls_flush_output(Conn* k, std::uint32_t slot) {
    tls_encrypt_queue(k);
    std::span<const std::uint8_t> out = k->tls->pending_output();
    if (out.empty()) return;
    SendNode* nd = node();
    nd->frame = FrameRef::copy_of({reinterpret_cast<const char*>(out.data()), out.size()});
    nd->cipher = true;
    k->tls->consumed(out.size());
    k->unsent += nd->frame.size();
    if (k->tail == nullptr) {
      k->head = k->tail = nd;
    } else {
      k->tail->next = nd;
      k->tail = nd;
    }
    mark_dirty(k, slot);
  }

  void on_send(const Completion& c) {
    std::uint32_t slot = slot_of(c.user_data);
    Conn* k = slot_ptr(slot);
    RC_ASSERT(k != nullptr && k->gen == gen_of(c.user_data) && k->send_op != nullptr);
    free_op(k->send_op);
    k->send_op = nullptr;
    if (c.res < 0) {
      RC_DEBUG("send on connection {}: {}", id_of(k, slot), std::strerror(-c.res));
      if (k->state == Conn::kOpen) {
        peer_gone(k, slot, CloseReason::kError);
      } else {
        finish_close(k, slot);
      }
      maybe_release(k, slot);
      return;
    }
    std::size_t sent = static_cast<std::size_t>(c.res);
    stats().bytes_out_total.add(sent);
    consume_sent(k, sent);
    if (k->state == Conn::kDead) {
      maybe_release(k, slot);
      return;
    }
    if (k->state == Conn::kHandoff && k->head == nullptr) {
      finish_handoff(k, slot);
      return;
    }
    if (k->head != nullptr) {
      mark_dirty(k, slot);
    } else if (k->state == Conn::kDraining) {
      start_linger(k, slot);
    }
    if (k->drain_watch && k->state == Conn::kOpen && k->unsent < k->low_water) {
      k->drain_watch = false;
      app->on_drained(id_of(k, slot));
    }
  }

  void consume_sent(Conn* k, std::size_t sent) {
    k->unsent -= sent;
    while (sent > 0) {
      SendNode* nd = k->head;
      RC_ASSERT(nd != nullptr);
      std::size_t left = nd->frame.size() - k->head_offset;
      if (sent < left) {
        k->head_offset += static_cast<std::uint32_t>(sent);
        return;
      }
      sent -= left;
      k->head_offset = 0;
      k->head = nd->next;
      if (k->head == nullptr) k->tail = nullptr;
      free_node(nd);
    }
  }

  void mark_dirty(Conn* k, std::uint32_t slot) {
    if (k->dirty) return;
    k->dirty = true;
    dirty.push_back(slot);
  }

  void flush_sends() {
    for (std::uint32_t slot : dirty) {
      Conn* k = slot_ptr(slot);
      k->dirty = false;
      if (k->send_op != nullptr || k->head == nullptr || k->fd < 0) continue;
      if (k->state != Conn::kOpen && k->state != Conn::kDraining && k->state != Conn::kHandoff) continue;
      if (k->tls != nullptr) tls_encrypt_queue(k);
      start_send(k, slot);
    }
    dirty.clear();
  }

  void start_send(Conn* k, std::uint32_t slot) {
    SendOp* o = op();
    std::uint32_t n = 0;
    std::uint32_t offset = k->head_offset;
    for (SendNode* nd = k->head; nd != nullptr && n < limits::send_iovecs_max; nd = nd->next) {
      o->iov[n].iov_base = nd->frame.data() + offset;
      o->iov[n].iov_len = nd->frame.size() - offset;
      offset = 0;
      ++n;
    }
    o->msg = msghdr{};
    o->msg.msg_iov = o->iov;
    o->msg.msg_iovlen = n;
    k->send_op = o;
    ring->sendmsg(k->fd, &o->msg, pack(kOpSend, slot, k->gen));
  }

  // ---- closing
  void peer_gone(Conn* k, std::uint32_t slot, CloseReason why) {
    ConnId id = id_of(k, slot);
    k->state = Conn::kDead;  // the app sees a connection it can no longer use
    app->on_closed(id, why);
    finish_close(k, slot, /*already_dead=*/true);
  }

  void start_linger(Conn* k, std::uint32_t slot) {
    k->state = Conn::kLinger;
    // A direct call, not IORING_OP_SHUTDOWN: that operation always runs in an
    // io-wq worker that looks the fd number up later, by when the number may
    // belong to a new connection. shutdown(2) on a socket never blocks.
    ::shutdown(k->fd, SHUT_WR);
    if (!k->recv_armed) arm_recv(k, slot);
  }

  void finish_close(Conn* k, std::uint32_t slot, bool already_dead = false) {
    if (k->state == Conn::kDead && !already_dead) return;
    if (k->state == Conn::kHandoff) {
      // Lost while its last transport bytes were going out: the app gets its
      // hand-off payload back to free it.
      app->on_adopt(0, k->handoff_payload);
      k->handoff_payload = nullptr;
    }
    k->state = Conn::kDead;
    if (k->recv_armed) ring->cancel(pack(kOpRecv, slot, k->gen), pack(kOpCancel, slot, k->gen));
    if (k->send_op != nullptr) ring->cancel(pack(kOpSend, slot, k->gen), pack(kOpCancel, slot, k->gen));
    if (k->fd >= 0) {
      // Operations queued this turn still name this fd number; it is closed
      // only after they are submitted, so a new connection cannot inherit it.
      closing_fds.push_back(k->fd);
      k->fd = -1;
    }
    free_input(k);
    maybe_release(k, slot);
  }

  void close_fds() {
    if (closing_fds.empty()) return;
    ring->submit();
    for (int fd : closing_fds) ::close(fd);
    closing_fds.clear();
  }

  void maybe_release(Conn* k, std::uint32_t slot) {
    if (k->state == Conn::kDead && !k->recv_armed && k->send_op == nullptr) release_slot(k, slot);
  }

  void sweep_closing(std::int64_t now) {
    std::size_t keep = 0;
    for (ConnId id : closing) {
      Conn* k = lookup(id);
      if (k == nullptr || k->state == Conn::kDead) continue;
      if (k->state != Conn::kDraining && k->state != Conn::kLinger) continue;
      if (now >= k->close_deadline_ms) {
        finish_close(k, static_cast<std::uint32_t>(id));
        continue;
      }
      closing[keep++] = id;
    }
    closing.resize(keep);
  }

  // ---- handoff
  void finish_handoff(Conn* k, std::uint32_t slot) {
    Mail m;
    m.kind = Mail::Kind::kAdopt;
    m.fd = k->fd;
    m.input = k->input;
    m.payload = k->handoff_payload;
    m.tls = k->tls;
    k->tls = nullptr;
    std::uint32_t target = k->handoff_target;
    k->input = InputBuffer{};
    int fd = k->fd;
    k->fd = -1;
    k->state = Conn::kDead;
    release_slot(k, slot);
    if (!s.post(target, std::move(m))) {
      RC_ERROR("shard {} mailbox is full: dropping a connection being handed to it", target);
      ::close(fd);
      std::free(m.input.data);
      delete static_cast<tls::Session*>(m.tls);
      app->on_adopt(0, m.payload);  // lets the app free the payload
    }
    stats().handoffs_total.add();
  }

  void adopt(Mail& m) {
    std::uint32_t slot;
    Conn* k = allocate(slot);
    if (k == nullptr) {
      ::close(m.fd);
      std::free(m.input.data);
      delete static_cast<tls::Session*>(m.tls);
      app->on_adopt(0, m.payload);
      return;
    }
    k->fd = m.fd;
    k->streaming = true;
    k->tls = static_cast<tls::Session*>(m.tls);
    // The handshake is over (the request head was read through it): from
    // here the session only encrypts and decrypts, with this shard's context.
    if (k->tls != nullptr) k->tls->rebind(*tls_thread);
    ConnId id = id_of(k, slot);
    app->on_adopt(id, m.payload);
    if (k->state == Conn::kHandoff) {
      // Passed on again (a ticket redeemed here for a room owned elsewhere).
      k->input = m.input;
      finish_handoff(k, slot);
      return;
    }
    if (lookup(id) != k || k->state != Conn::kOpen) {
      std::free(m.input.data);
      return;
    }
    k->input = m.input;
    if (k->input.size > 0) feed_input(k, slot);
    if (lookup(id) == k && k->state == Conn::kOpen && !k->recv_armed) arm_recv(k, slot);
  }

  void drain_mailbox() {
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

  void rearm_pending() {
    for (ConnId id : rearm) {
      Conn* k = lookup(id);
      if (k != nullptr && !k->recv_armed &&
          (k->state == Conn::kOpen || k->state == Conn::kDraining || k->state == Conn::kLinger)) {
        arm_recv(k, static_cast<std::uint32_t>(id));
      }
    }
    rearm.clear();
  }

  bool done(std::int64_t now) {
    if (!shutdown_seen) return false;
    if (now >= s.group_.shutdown_deadline_ms()) return true;
    return app->live() == 0 && slots_used == 0;
  }

  void loop() {
    std::int64_t now = monotonic_ms();
    s.now_ms_ = now;
    std::int64_t next_tick = now + s.opts_.tick_ms;
    std::int64_t next_sweep = now + 1000;
    while (true) {
      std::int64_t due = std::min(next_tick, next_sweep);
      if (shutdown_seen) due = std::min(due, now + 50);
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
        next_sweep = now + 1000;
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

  // After a burst (a join storm's welcomes, a mass disconnect) the allocator
  // keeps the freed memory, in holes between live objects that its own trim
  // at the top of the heap cannot reach. Once such a burst is over (called
  // once a second), hand the free pages back, so resident memory follows the
  // live sessions. Never during steady heavy traffic: what it frees, it
  // allocates again at once.
  void settle_heap() {
    const std::size_t freed_now = frame_pool::trim() + trim_free_ops();
    const std::uint32_t released_now = released_since_sweep;
    freed_since_trim += freed_now;
    released_since_trim += released_now;
    released_since_sweep = 0;
    const bool burst = freed_since_trim >= kTrimAfterFreedBytes || released_since_trim >= kTrimAfterReleasedConns;
    // What the pools freed is what the last second no longer needed: the
    // burst is over unless connections are still going away.
    const bool calm = released_now < kTrimAfterReleasedConns / 4;
    if (!burst || !calm) return;
    freed_since_trim = 0;
    released_since_trim = 0;
    malloc_trim(0);
    stats().heap_trims_total.add();
  }

  void teardown() {
    // Mail that arrived during the last turn still owns its payloads: the app
    // frees what it made (chat log replies), connections are closed below.
    if (app) {
      Mail m;
      while (mailbox.try_pop(m)) {
        if (m.kind == Mail::Kind::kApp) {
          app->on_mail(m);
        } else if (m.kind == Mail::Kind::kAdopt) {
          ::close(m.fd);
          std::free(m.input.data);
          delete static_cast<tls::Session*>(m.tls);
          app->on_adopt(0, m.payload);
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
      if (m.kind == Mail::Kind::kAdopt) {
        ::close(m.fd);
        std::free(m.input.data);
        delete static_cast<tls::Session*>(m.tls);
      }
    }
    // The kernel is done with every send once the ring is closed.
    ring.reset();
    while (free_ops != nullptr) delete std::exchange(free_ops, free_ops->next_free);
  }
};

// ---------------------------------------------------------------- Shard

Shard::Shard(ShardGroup& group, ShardOptions opts)
    : group_(group), opts_(std::move(opts)), impl_(std::make_unique<Impl>(*this)) {}

Shard::~Shard() = default;

ShardStats& Shard::stats() { return group_.stats(opts_.index); }

std::uint64_t Shard::send(ConnId id, FrameRef frame) {
  Conn* k = impl_->lookup(id);
  if (k == nullptr || k->state != Conn::kOpen || !frame || frame.size() == 0) return 0;
  SendNode* nd = impl_->node();
  k->unsent += frame.size();
  nd->frame = std::move(frame);
  if (k->tail == nullptr) {
    k->head = k->tail = nd;
  } else {
    k->tail->next = nd;
    k->tail = nd;
  }
  stats().frames_out_total.add();
  impl_->mark_dirty(k, static_cast<std::uint32_t>(id));
  return k->unsent;
}

std::uint64_t Shard::unsent_bytes(ConnId id) const {
  Conn* k = impl_->lookup(id);
  return k == nullptr ? 0 : k->unsent;
}

void Shard::watch_drain(ConnId id, std::uint64_t low_water_bytes) {
  Conn* k = impl_->lookup(id);
  if (k == nullptr) return;
  k->drain_watch = true;
  k->low_water = low_water_bytes;
}

void Shard::set_streaming(ConnId id) {
  Conn* k = impl_->lookup(id);
  if (k != nullptr) k->streaming = true;
}

void Shard::set_app_data(ConnId id, void* data) {
  Conn* k = impl_->lookup(id);
  if (k != nullptr) k->app_data = data;
}

void* Shard::app_data(ConnId id) const {
  Conn* k = impl_->lookup(id);
  return k == nullptr ? nullptr : k->app_data;
}

bool Shard::is_open(ConnId id) const {
  Conn* k = impl_->lookup(id);
  return k != nullptr && k->state == Conn::kOpen;
}

std::string Shard::peer(ConnId id) const {
  Conn* k = impl_->lookup(id);
  if (k == nullptr || k->fd < 0) return "?";
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getpeername(k->fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return fmt::format("{}:{}", host, port);
}

void Shard::close(ConnId id) {
  Conn* k = impl_->lookup(id);
  if (k == nullptr || k->state != Conn::kOpen) return;
  std::uint32_t slot = static_cast<std::uint32_t>(id);
  if (k->tls != nullptr) {
    // Frames already queued are encrypted before the close_notify alert.
    impl_->tls_encrypt_queue(k);
    k->tls->close_notify();
    impl_->tls_flush_output(k, slot);
  }
  k->state = Conn::kDraining;
  k->drain_watch = false;
  Impl::free_input(k);
  k->close_deadline_ms = now_ms_ + opts_.linger_ms;
  impl_->closing.push_back(id);
  if (k->head == nullptr && k->send_op == nullptr) impl_->start_linger(k, slot);
}

bool Shard::handoff(ConnId id, std::uint32_t target_shard, void* payload) {
  Conn* k = impl_->lookup(id);
  RC_ASSERT(k != nullptr && k->state == Conn::kOpen && !k->recv_armed);
  // Only transport bytes (a TLS handshake's last flight) may still be queued;
  // the hand-off waits for them to go out.
  for (SendNode* nd = k->head; nd != nullptr; nd = nd->next) RC_ASSERT(nd->cipher);
  RC_ASSERT(target_shard < group_.size() && target_shard != opts_.index);
  k->state = Conn::kHandoff;
  k->handoff_target = target_shard;
  k->handoff_payload = payload;
  return true;
}

bool Shard::post(std::uint32_t target_shard, Mail&& mail) {
  Shard& t = group_.shard(target_shard);
  if (!t.deliver_mail(std::move(mail))) return false;
  if (!t.impl_->wake_pending.exchange(true, std::memory_order_acq_rel)) {
    int fd = t.ring_fd();
    if (fd >= 0) {
      impl_->ring->msg_ring(fd, 0, pack(kOpWake, 0, 0));
    } else {
      t.wake_from_outside();
    }
  }
  return true;
}

bool Shard::deliver_mail(Mail&& mail) { return impl_->mailbox.try_push(std::move(mail)); }

void Shard::wake_from_outside() {
  std::uint64_t one = 1;
  if (impl_->event_fd >= 0) {
    ssize_t rc = ::write(impl_->event_fd, &one, sizeof one);
    (void)rc;
  }
}

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

// ---------------------------------------------------------------- ShardGroup

struct ShardGroup::StartState {
  std::mutex mu;
  std::condition_variable cv;
  std::uint32_t reported = 0;
  Status first_error;
};

ShardGroup::ShardGroup(std::uint32_t count, const ShardOptions& base)
    : stats_(new ShardStats[count]), start_(std::make_unique<StartState>()) {
  RC_ASSERT(count >= 1 && count <= limits::shards_max);
  for (std::uint32_t i = 0; i < count; ++i) {
    ShardOptions o = base;
    o.index = i;
    shards_.push_back(std::make_unique<Shard>(*this, o));
  }
}

ShardGroup::~ShardGroup() { join(); }

Status ShardGroup::start(std::function<std::unique_ptr<ShardApp>(Shard&)> make_app) {
  // SO_REUSEPORT would let a second server on the same port silently take a
  // share of the connections: first make sure nobody listens there.
  const ShardOptions& o = shards_[0]->options();
  Result<int> probe = open_listener(o.bind, o.port, /*reuse_port=*/false);
  if (!probe) return Status::error(probe.status().message() + " (is another server using the port?)");
  ::close(*probe);
  for (auto& s : shards_) {
    Shard* shard = s.get();
    threads_.emplace_back([shard, make_app] { shard->run(make_app); });
  }
  std::unique_lock lock(start_->mu);
  start_->cv.wait(lock, [&] { return start_->reported == shards_.size(); });
  return start_->first_error;
}

void ShardGroup::report_ready(std::uint32_t index, Status status) {
  std::lock_guard lock(start_->mu);
  if (!status && start_->first_error.is_ok()) {
    start_->first_error = Status::error(fmt::format("shard {}: {}", index, status.message()));
  }
  ++start_->reported;
  start_->cv.notify_all();
}

void ShardGroup::begin_shutdown(std::int64_t deadline_ms) {
  deadline_ms_.store(deadline_ms, std::memory_order_release);
  shutting_down_.store(true, std::memory_order_release);
  for (std::uint32_t i = 0; i < size(); ++i) {
    Mail m;
    m.kind = Mail::Kind::kShutdown;
    while (!post(i, std::move(m))) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

bool ShardGroup::post(std::uint32_t target, Mail&& mail) {
  Shard& t = *shards_[target];
  if (!t.deliver_mail(std::move(mail))) return false;
  t.wake_from_outside();
  return true;
}

void ShardGroup::join() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  joined_.store(true, std::memory_order_release);
}

void ShardGroup::drain_mail(const std::function<void(Mail&)>& fn) {
  RC_ASSERT(joined());
  for (auto& shard : shards_) {
    Mail m;
    while (shard->impl_->mailbox.try_pop(m)) fn(m);
  }
}

}  // namespace rc
