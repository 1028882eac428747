#pragma once
// Internal to core/shard*.cc, not for other folders: the private state of a
// Shard and the methods its files share.
//
// Contract
// - Everything here runs on the shard's own thread, except `mailbox` (any
//   thread pushes, see Shard::deliver_mail; ShardGroup::drain_mail pops once
//   the thread has ended) and `wake_pending` (set by the poster, cleared by
//   the shard).
// - A connection is named by its slot in the table plus a generation; a ConnId
//   or a completion's user_data whose generation no longer matches the slot
//   names a connection that is gone.
// - The Impl methods are spread over files by concern:
//     core/shard.cc         the public Shard methods
//     core/shard_loop.cc    run, set-up, the loop, dispatch, mailbox, teardown
//     core/shard_table.cc   connection table, send pools, heap, input buffer
//     core/shard_recv.cc    accept, receive, delivery to the app
//     core/shard_send.cc    the send queue, send/sendmsg and their completions
//     core/shard_close.cc   closing, linger, hand-off and adoption
//     core/shard_tls.cc     the TLS path
//     core/shard_group.cc   ShardGroup, the listener, the clocks

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/limits.h"
#include "core/mpsc_queue.h"
#include "core/ring.h"
#include "core/shard.h"
#include "core/status.h"
#include "core/tls.h"

namespace rc {

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
  bool fixed = false;  // registered in the ring's file table at the slot's index
  // A send failed while open: nothing more is sent, and the receive side,
  // which may still hold what the peer sent last, ends the connection.
  bool send_failed = false;
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
  // ---- user_data
  // user_data layout: op (8 bits) | generation (24 bits) | slot (32 bits).
  enum Op : std::uint8_t {
    kOpNone = 0,
    kOpAccept,
    kOpRecv,
    kOpSend,
    kOpCancel,
    kOpEventfd,
    kOpWake,
    kOpFiles,
  };
  static constexpr std::uint32_t kGenMask = 0xffffff;
  static constexpr std::uint32_t kChunkSlots = 1024;
  static constexpr std::uint16_t kBufferGroup = 0;
  static constexpr std::uint32_t kReapBatch = 256;
  static constexpr std::int64_t kSweepIntervalMs = 1000;   // timeouts, pings, settle_heap
  static constexpr std::int64_t kShutdownPollMs = 50;      // how often shutdown progress is checked
  static constexpr std::size_t kSendNodesPerChunk = 1024;  // the node pool grows by this many

  static std::uint64_t pack(Op op, std::uint32_t slot, std::uint32_t gen) {
    return (static_cast<std::uint64_t>(op) << 56) |
           (static_cast<std::uint64_t>(gen & kGenMask) << 32) | slot;
  }
  static Op op_of(std::uint64_t ud) { return static_cast<Op>(ud >> 56); }
  static std::uint32_t slot_of(std::uint64_t ud) { return static_cast<std::uint32_t>(ud); }
  static std::uint32_t gen_of(std::uint64_t ud) {
    return static_cast<std::uint32_t>(ud >> 32) & kGenMask;
  }
  static ConnId make_id(std::uint32_t slot, std::uint32_t gen) {
    return (static_cast<std::uint64_t>(gen) << 32) | slot;
  }

  // ---- state
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
  std::uint32_t ops_peak = 0;        // most ops in use at once since the last trim_free_ops
  std::size_t freed_since_trim = 0;  // see settle_heap
  std::uint32_t released_since_trim = 0;
  std::uint32_t released_since_sweep = 0;
  bool shutdown_seen = false;
  bool accept_armed = false;
  std::unique_ptr<tls::ThreadContext> tls_thread;
  std::string tls_plain;  // scratch for decrypted bytes
  Completion batch[kReapBatch];

  explicit Impl(Shard& shard) : s(shard) {}
  ShardStats& stats() { return s.stats(); }

  // ---- connection table (core/shard_table.cc). The three lookups stay
  // inline here: every file uses them, several times per completion.
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
  // A fresh kOpen connection with the next generation of a free slot; nullptr
  // at limits::connections_per_shard_max.
  Conn* allocate(std::uint32_t& slot_out);
  // Frees the queue, the input buffer and the TLS session; keeps the generation.
  void release_slot(Conn* k, std::uint32_t slot);

  // ---- send queue nodes and ops (core/shard_table.cc)
  SendNode* node();
  // Appends frame to k's send queue (cipher: bytes that must not be
  // encrypted again) and marks k for this turn's flush.
  void enqueue(Conn* k, std::uint32_t slot, FrameRef frame, bool cipher);
  // The app is done with k: what is queued still goes out, then the linger
  // close (sweep_closing enforces the deadline).
  void start_draining(Conn* k, std::uint32_t slot);
  void free_node(SendNode* nd);
  SendOp* op();
  void free_op(SendOp* o);
  std::size_t trim_free_ops();
  void drop_queue(Conn* k);
  void settle_heap();

  // ---- input buffer (core/shard_table.cc)
  static void free_input(Conn* k);
  // False when the buffer would exceed ShardOptions::input_bytes_max.
  bool append_input(Conn* k, const std::uint8_t* data, std::size_t len);
  static void consume_input(Conn* k, std::size_t n);

  // ---- set-up, loop and mailbox (core/shard_loop.cc)
  // Defined in core/shard_group.cc: ShardGroup::start probes the port with it.
  static Result<int> open_listener(const std::string& bind, std::uint16_t port, bool reuse_port);
  Status listen();
  Status setup();
  void arm_accept();
  void arm_eventfd();
  void dispatch(const Completion& c);
  void drain_mailbox();
  void rearm_pending();
  bool done(std::int64_t now);
  void loop();
  void teardown();

  // ---- receiving (core/shard_recv.cc)
  void arm_recv(Conn* k, std::uint32_t slot);
  // Registers k's socket at its slot's index when the table reaches that far.
  void register_file(Conn* k, std::uint32_t slot);
  static Socket socket_of(const Conn* k, std::uint32_t slot) {
    return k->fixed ? Socket{static_cast<int>(slot), true} : Socket{k->fd, false};
  }
  void on_accept(const Completion& c);
  void on_recv(const Completion& c);
  void after_recv(Conn* k, std::uint32_t slot);
  void deliver(Conn* k, std::uint32_t slot, std::uint8_t* data, std::size_t len);
  void feed_input(Conn* k, std::uint32_t slot);

  // ---- sending (core/shard_send.cc)
  void on_send(const Completion& c);
  void consume_sent(Conn* k, std::size_t sent);
  // Inline: every queued frame calls it (Shard::send).
  void mark_dirty(Conn* k, std::uint32_t slot) {
    if (k->dirty) return;
    k->dirty = true;
    dirty.push_back(slot);
  }
  void flush_sends();
  void start_send(Conn* k, std::uint32_t slot);

  // ---- TLS (core/shard_tls.cc)
  void tls_input(Conn* k, std::uint32_t slot, const std::uint8_t* data, std::size_t len);
  void tls_end(Conn* k, std::uint32_t slot, CloseReason why);
  void tls_encrypt_queue(Conn* k);
  void tls_flush_output(Conn* k, std::uint32_t slot);

  // ---- closing, hand-off and adoption (core/shard_close.cc)
  void peer_gone(Conn* k, std::uint32_t slot, CloseReason why);
  void start_linger(Conn* k, std::uint32_t slot);
  void finish_close(Conn* k, std::uint32_t slot, bool already_dead = false);
  void close_fds();
  void maybe_release(Conn* k, std::uint32_t slot);
  void sweep_closing(std::int64_t now);
  void finish_handoff(Conn* k, std::uint32_t slot);
  void adopt(Mail& m);
  // Closes and frees an adopt mail's connection; the app (while there is one)
  // frees its payload through on_adopt(0, payload).
  void drop_adopt_mail(Mail& m);
};

}  // namespace rc
