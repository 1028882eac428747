#pragma once
// The chat log's persistence thread: the real ChatLog (chat_log.h).
//
// Contract
// - open() runs on the starting thread (main), before any shard exists: it
//   opens the LMDB environment, loads or creates the key (log_store.h) and
//   reads every room's retained seq range. Errors are Status values; a key
//   that does not open the log says so ("the chat key does not open the log
//   in DIR") and main exits with status 2.
// - start() starts the persistence thread; stop() stops accepting requests,
//   commits and delivers everything already accepted, then joins it. Both
//   are called once, by the thread that called open(). The destructor stops
//   a running writer.
// - append()/open()/read() may be called from any thread, between start()
//   and stop() (before start() they queue, after stop() they refuse). They
//   never block: each pushes into a bounded lock-free inbox
//   (limits::inbox_requests) and wakes the thread (a futex, only when it
//   sleeps). `shard` must be below LogOptions::shards (asserted), and room
//   ids valid (asserted).
// - One loop turn of the thread takes everything queued, assigns seqs (room
//   last_seq + 1, in arrival order), runs ONE write transaction for all
//   appends plus due retention deletes, commits it (write + fdatasync), then
//   serves the turn's opens and reads in one read transaction, then hands
//   each shard one LogReply. Requests that arrive meanwhile wait for the next
//   turn: that is the group commit.
// - A failed transaction (full map, I/O error) fails every append of the
//   turn (AppendFailed with the reason); their seqs are given back and the
//   writer keeps running. Committed data is never touched again except by
//   retention.
// - Retention keeps the newest `retention` messages of every room. Older
//   ones are deleted by the thread, inside the next write transaction, at
//   most limits::retention_deletes_per_txn per transaction; a bigger backlog
//   (found at open, e.g. after lowering --chat-retention) is worked off one
//   transaction per turn. Retained messages keep their seq.
// - Delivery: Deliver(shard, reply) is called on the persistence thread.
//   Returning true means the callee took the reply. Returning false with
//   `reply` still set means "not now": the writer offers it again later (in
//   order: later replies to that shard wait behind it), and while a shard
//   has limits::pending_replies_per_shard_max replies waiting the writer
//   takes no new requests. Returning false after taking the reply drops it
//   (counted in Stats::replies_dropped).
// - stats() may be read from any thread (relaxed counters).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "core/metrics.h"
#include "core/mpsc_queue.h"
#include "core/status.h"
#include "persist/chat_log.h"
#include "persist/limits.h"
#include "persist/log_store.h"

namespace rc::persist {

struct LogOptions {
  std::string data_dir;
  std::string key_file;              // empty: <data_dir>/chat.key (created on first start)
  std::uint64_t retention = 100000;  // messages kept per room, >= 1
  std::uint32_t shards = 1;          // replies are routed to shards 0..shards-1
  std::size_t map_bytes = limits::map_bytes_default;
};

using Deliver = std::function<bool(std::uint32_t shard, std::unique_ptr<LogReply>&& reply)>;

// Histogram bounds of the writer's statistics.
inline constexpr std::uint64_t kCommitBatchBounds[] = {1,  2,   4,   8,    16,  32,
                                                       64, 128, 256, 1024, 4096};
inline constexpr std::uint64_t kCommitLatencyBoundsUs[] = {50,   100,  200,   500,   1000,
                                                           2000, 5000, 10000, 50000, 250000};

class LogWriter final : public ChatLog {
 public:
  static Result<std::unique_ptr<LogWriter>> open(const LogOptions& options, Deliver deliver);
  ~LogWriter() override;
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  void start();
  void stop();

  bool append(std::uint32_t shard, AppendRequest&& r) override;
  bool open(std::uint32_t shard, OpenRequest&& r) override;
  bool read(std::uint32_t shard, ReadRequest&& r) override;

  // Written by the persistence thread only.
  struct Stats {
    Counter commits;             // write transactions committed
    Counter messages_committed;  // appends answered with Committed
    Counter append_failures;     // appends answered with AppendFailed
    Counter fsync_failures;      // transactions that failed for a reason other than a full map
    Counter map_full_errors;     // transactions that failed with MDB_MAP_FULL
    Counter retention_deleted;   // records removed by retention
    Counter reads;               // opens and reads served
    Counter decrypt_failures;    // records left out of reads because they did not open
    Counter replies_dropped;     // replies a shard took and refused at once, or left at stop
    Histogram<std::size(kCommitBatchBounds)> commit_batch_size{kCommitBatchBounds};
    Histogram<std::size(kCommitLatencyBoundsUs)> commit_latency_us{kCommitLatencyBoundsUs};
  };
  const Stats& stats() const { return stats_; }
  // Requests refused because the inbox was full (any thread increments).
  std::uint64_t inbox_full() const { return inbox_full_.load(std::memory_order_relaxed); }

  const std::string& key_path() const { return store_->key_path(); }

 private:
  struct Request {
    std::uint32_t shard = 0;
    std::variant<AppendRequest, OpenRequest, ReadRequest> body;
  };
  struct RoomState {
    std::uint64_t first_seq = 0;  // oldest retained, 0 when none
    std::uint64_t last_seq = 0;
    std::uint64_t seq_turn = 0;   // the last turn that assigned seqs here
    std::uint64_t trim_turn = 0;  // the last turn that considered a trim here
    std::uint64_t count() const { return first_seq == 0 ? 0 : last_seq - first_seq + 1; }
  };
  // A room by its key in rooms_ (nodes never move, and rooms are never erased).
  using RoomRef = std::pair<std::string_view, RoomState*>;
  struct Turn;

  LogWriter(std::unique_ptr<LogStore> store, LogOptions options, Deliver deliver);
  bool push(std::uint32_t shard, Request&& r);
  void run();
  bool take_requests(Turn& turn);
  void commit_appends(Turn& turn);
  void assign_seqs(Turn& turn);
  void collect_trims(Turn& turn);
  void finish_trims(Turn& turn, bool trimmed);
  void count_failure(const WriteOutcome& w, std::size_t appends);
  void answer_committed(Turn& turn);
  void answer_failed(Turn& turn, const std::string& reason);
  void serve_reads(Turn& turn);
  // Reads show only seqs above this: the messages retention keeps.
  std::uint64_t retained_after(const std::string& room) const;
  void serve_open(Reader* reader, std::uint32_t shard, OpenRequest& r, Turn& turn);
  void serve_read(Reader* reader, std::uint32_t shard, ReadRequest& r, Turn& turn);
  bool flush_replies(Turn& turn, bool give_up);
  bool trims_due() const;
  LogReply& reply_for(Turn& turn, std::uint32_t shard);

  std::unique_ptr<LogStore> store_;
  LogOptions options_;
  Deliver deliver_;
  std::unique_ptr<MpscQueue<Request, limits::inbox_requests>> inbox_;

  // ---- persistence thread only
  std::unordered_map<std::string, RoomState> rooms_;
  std::vector<RoomRef> trim_backlog_;  // rooms still above the retention limit
  // A failed deletes-only transaction pauses retention until then (or until
  // the next append), so that a full disk does not make the thread spin.
  std::chrono::steady_clock::time_point trims_paused_until_{};
  std::uint64_t turn_number_ = 0;
  std::vector<std::deque<std::unique_ptr<LogReply>>> pending_;  // per shard, refused replies

  // ---- shared
  std::atomic<bool> accepting_{true};
  std::atomic<std::uint32_t> in_flight_{0};  // callers between "accepting?" and their push
  std::atomic<std::uint32_t> wake_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> inbox_full_{0};
  std::thread thread_;
  Stats stats_;
};

}  // namespace rc::persist
