#include "persist/log_writer.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "core/assert.h"
#include "core/log.h"

namespace rc::persist {
namespace {

using Clock = std::chrono::steady_clock;

bool fits_record(const ChatMessage& m) {
  constexpr std::size_t max = limits::body_field_bytes_max;
  return m.user_id.size() <= max && m.name.size() <= max && m.text.size() <= max &&
         m.client_id.size() <= max;
}

}  // namespace

// Everything one loop turn works on. Kept across turns so that its vectors
// keep their capacity: a steady stream of commits does not allocate for them.
struct LogWriter::Turn {
  struct Append {
    std::uint32_t shard = 0;
    AppendRequest req;
    bool rejected = false;  // refused before the transaction (too large)
  };
  std::vector<Append> appends;
  std::vector<std::pair<std::uint32_t, OpenRequest>> opens;
  std::vector<std::pair<std::uint32_t, ReadRequest>> reads;
  // The rooms that got seqs this turn, with their state from before, for
  // the rollback.
  struct Saved {
    RoomRef room;
    RoomState before;
  };
  std::vector<Saved> saved;
  std::vector<NewRecord> records;
  // Rooms whose retention this turn looked at; the trims planned for some
  // of them, and the state each trim belongs to.
  std::vector<RoomRef> trim_candidates;
  std::vector<TrimRange> trims;
  std::vector<RoomState*> trim_states;
  std::vector<std::unique_ptr<LogReply>> replies;  // per shard, null when nothing to say

  void clear() {
    appends.clear();
    opens.clear();
    reads.clear();
    saved.clear();
    records.clear();
    trim_candidates.clear();
    trims.clear();
    trim_states.clear();
    for (auto& r : replies) r.reset();
  }
};

// ---- setup and shutdown

LogWriter::LogWriter(std::unique_ptr<LogStore> store, LogOptions options, Deliver deliver)
    : store_(std::move(store)),
      options_(std::move(options)),
      deliver_(std::move(deliver)),
      inbox_(std::make_unique<MpscQueue<Request, limits::inbox_requests>>()),
      pending_(options_.shards) {}

Result<std::unique_ptr<LogWriter>> LogWriter::open(const LogOptions& options, Deliver deliver) {
  RC_ASSERT(options.retention >= 1 && options.shards >= 1 && deliver);
  auto store = LogStore::open(
      StoreOptions{options.data_dir, options.key_file, options.map_bytes, /*read_only=*/false});
  if (!store) return store.status();
  // Every room's retained range, read once: seq assignment then never waits
  // for the disk, and rooms above the retention limit (it may have been
  // lowered since the last run) are trimmed without waiting for new chat.
  auto reader = (*store)->reader();
  if (!reader) return reader.status();
  auto rooms = reader->rooms();
  if (!rooms) return rooms.status();
  std::unique_ptr<LogWriter> w(new LogWriter(std::move(*store), options, std::move(deliver)));
  for (RoomBounds& b : *rooms) {
    auto it = w->rooms_.emplace(std::move(b.room), RoomState{b.first_seq, b.last_seq}).first;
    if (it->second.count() > options.retention)
      w->trim_backlog_.emplace_back(it->first, &it->second);
  }
  return w;
}

LogWriter::~LogWriter() {
  stop();
}

void LogWriter::start() {
  RC_ASSERT(!thread_.joinable() && !stopping_.load());
  thread_ = std::thread([this] { run(); });
}

void LogWriter::stop() {
  accepting_.store(false);
  // Pairs with push(): it raises in_flight_ and then reads accepting_; we
  // clear accepting_ and then read in_flight_ (both sequentially
  // consistent). Once this loop ends no push can land in the inbox.
  while (in_flight_.load() != 0) std::this_thread::yield();
  stopping_.store(true, std::memory_order_release);
  wake_.fetch_add(1, std::memory_order_release);
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

// ---- requests (any thread)

bool LogWriter::push(std::uint32_t shard, Request&& r) {
  RC_ASSERT(shard < options_.shards);
  in_flight_.fetch_add(1);
  if (!accepting_.load()) {
    in_flight_.fetch_sub(1, std::memory_order_release);
    return false;
  }
  const bool queued = inbox_->try_push(std::move(r));
  if (queued) {
    wake_.fetch_add(1, std::memory_order_release);
    wake_.notify_one();
  } else {
    inbox_full_.fetch_add(1, std::memory_order_relaxed);
  }
  in_flight_.fetch_sub(1, std::memory_order_release);
  return queued;
}

bool LogWriter::append(std::uint32_t shard, AppendRequest&& r) {
  RC_ASSERT(valid_room_id(r.room));
  return push(shard, Request{shard, std::move(r)});
}

bool LogWriter::open(std::uint32_t shard, OpenRequest&& r) {
  RC_ASSERT(valid_room_id(r.room));
  return push(shard, Request{shard, std::move(r)});
}

bool LogWriter::read(std::uint32_t shard, ReadRequest&& r) {
  RC_ASSERT(valid_room_id(r.room));
  return push(shard, Request{shard, std::move(r)});
}

// ---- the persistence thread

void LogWriter::run() {
  log::set_thread_name("persist");
  Turn turn;
  turn.replies.resize(options_.shards);
  Clock::time_point stop_deadline{};
  for (;;) {
    // Read both before draining: a push after this load bumps wake_, so the
    // wait below returns at once; stopping_ is set only after every push has
    // finished, so a turn that saw it also sees every request.
    const std::uint32_t seen = wake_.load(std::memory_order_acquire);
    const bool stopping = stopping_.load(std::memory_order_acquire);
    if (stopping && stop_deadline == Clock::time_point{}) {
      stop_deadline = Clock::now() + std::chrono::milliseconds(limits::stop_deliver_ms);
    }
    turn.clear();
    const bool took = take_requests(turn);
    if (!turn.appends.empty() || (trims_due() && !stopping)) commit_appends(turn);
    serve_reads(turn);
    const bool delivered = flush_replies(turn, stopping && Clock::now() >= stop_deadline);
    if (stopping && !took && inbox_->empty_approx() && delivered) return;
    if (took || (trims_due() && !stopping)) continue;
    if (!delivered) {
      std::this_thread::sleep_for(std::chrono::milliseconds(limits::deliver_retry_ms));
      continue;
    }
    wake_.wait(seen, std::memory_order_acquire);
  }
}

// Moves everything queued (at most one inbox worth, so that a steady stream
// cannot keep a turn from ending) into the turn. Takes nothing while a shard
// refuses its replies: the inbox then fills and callers see `false`.
bool LogWriter::take_requests(Turn& turn) {
  for (const auto& waiting : pending_) {
    if (waiting.size() >= limits::pending_replies_per_shard_max) return false;
  }
  Request r;
  std::size_t n = 0;
  for (; n < limits::inbox_requests && inbox_->try_pop(r); ++n) {
    if (auto* a = std::get_if<AppendRequest>(&r.body)) {
      turn.appends.push_back(Turn::Append{r.shard, std::move(*a)});
    } else if (auto* o = std::get_if<OpenRequest>(&r.body)) {
      turn.opens.emplace_back(r.shard, std::move(*o));
    } else {
      turn.reads.emplace_back(r.shard, std::move(std::get<ReadRequest>(r.body)));
    }
  }
  return n > 0;
}

LogReply& LogWriter::reply_for(Turn& turn, std::uint32_t shard) {
  auto& reply = turn.replies[shard];
  if (!reply) reply = std::make_unique<LogReply>();
  return *reply;
}

bool LogWriter::trims_due() const {
  return !trim_backlog_.empty() && Clock::now() >= trims_paused_until_;
}

// ---- the group commit

// Assigns seqs, writes the turn's appends and the due retention deletes in
// one transaction, and answers every append.
void LogWriter::commit_appends(Turn& turn) {
  ++turn_number_;
  assign_seqs(turn);
  collect_trims(turn);
  if (turn.records.empty() && turn.trims.empty()) {
    answer_committed(turn);  // only rejected appends, if any
    finish_trims(turn, false);
    return;
  }
  const auto started = Clock::now();
  WriteOutcome w = store_->write(turn.records, turn.trims);
  bool trimmed = !turn.trims.empty();
  if (!w.status.is_ok() && trimmed && !turn.records.empty()) {
    // Deletes need fresh pages too: never let retention cost the appends
    // their place. Try once more with the appends alone.
    RC_WARN("chat log: commit with retention deletes failed ({}); retrying without them",
            w.status.message());
    trimmed = false;
    w = store_->write(turn.records, {});
  }
  const auto latency_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count();
  if (!w.status.is_ok()) {
    for (const auto& s : turn.saved) *s.room.second = s.before;  // give the seqs back
    count_failure(w, turn.records.size());
    if (turn.records.empty()) trims_paused_until_ = Clock::now() + std::chrono::seconds(1);
    answer_failed(turn, w.status.message());
    finish_trims(turn, false);
    return;
  }
  stats_.commits.add();
  stats_.messages_committed.add(turn.records.size());
  stats_.retention_deleted.add(w.deleted);
  if (!turn.records.empty()) {
    stats_.commit_batch_size.observe(turn.records.size());
    stats_.commit_latency_us.observe(static_cast<std::uint64_t>(latency_us));
  }
  finish_trims(turn, trimmed);
  answer_committed(turn);
}

// Seqs are handed out here, on the persistence thread, in arrival order:
// per room last_seq + 1. The records are then sorted by key so that the
// transaction walks the tree in order (and MDB_APPEND applies where it can).
void LogWriter::assign_seqs(Turn& turn) {
  for (auto& a : turn.appends) {
    if (!fits_record(a.req.msg)) {
      a.rejected = true;
      continue;
    }
    auto it = rooms_.try_emplace(a.req.room).first;
    RoomState& state = it->second;
    if (state.seq_turn != turn_number_) {
      turn.saved.push_back(Turn::Saved{RoomRef(it->first, &state), state});
      state.seq_turn = turn_number_;
    }
    a.req.msg.seq = ++state.last_seq;
    if (state.first_seq == 0) state.first_seq = a.req.msg.seq;
    turn.records.push_back(NewRecord{it->first, &a.req.msg});
  }
  std::sort(turn.records.begin(), turn.records.end(), [](const NewRecord& x, const NewRecord& y) {
    return x.room != y.room ? x.room < y.room : x.msg->seq < y.msg->seq;
  });
}

// Plans the retention deletes of this transaction: for the rooms that got
// messages and the rooms left over from earlier turns, the oldest records
// beyond `retention`, at most retention_deletes_per_txn in all.
void LogWriter::collect_trims(Turn& turn) {
  auto consider = [&](std::string_view room, RoomState* state) {
    if (state->trim_turn == turn_number_) return;
    state->trim_turn = turn_number_;
    turn.trim_candidates.emplace_back(room, state);
  };
  for (const auto& s : turn.saved) consider(s.room.first, s.room.second);
  for (const auto& [room, state] : trim_backlog_) consider(room, state);

  std::uint64_t budget = limits::retention_deletes_per_txn;
  for (const auto& [room, state] : turn.trim_candidates) {
    if (budget == 0) break;
    if (state->count() <= options_.retention) continue;
    const std::uint64_t n = std::min(state->count() - options_.retention, budget);
    turn.trims.push_back(TrimRange{room, state->first_seq, state->first_seq + n - 1});
    turn.trim_states.push_back(state);
    budget -= n;
  }
}

// Applies the committed trims to the room states and keeps the rooms that
// are still above the limit for the next turn.
void LogWriter::finish_trims(Turn& turn, bool trimmed) {
  if (trimmed) {
    for (std::size_t i = 0; i < turn.trims.size(); ++i) {
      turn.trim_states[i]->first_seq = turn.trims[i].last_seq + 1;
    }
  }
  trim_backlog_.clear();
  for (const RoomRef& c : turn.trim_candidates) {
    if (c.second->count() > options_.retention) trim_backlog_.push_back(c);
  }
}

void LogWriter::count_failure(const WriteOutcome& w, std::size_t appends) {
  if (w.map_full) {
    stats_.map_full_errors.add();
  } else {
    stats_.fsync_failures.add();
  }
  RC_ERROR("chat log: commit of {} messages failed: {}", appends, w.status.message());
}

void LogWriter::answer_committed(Turn& turn) {
  // (shard, room) -> index in that shard's reply.committed
  std::map<std::pair<std::uint32_t, std::string_view>, std::size_t> where;
  for (auto& a : turn.appends) {
    LogReply& reply = reply_for(turn, a.shard);
    if (a.rejected) {
      stats_.append_failures.add();
      reply.failed.push_back(
          AppendFailed{a.req.room, a.req.ref, "message too large for the chat log"});
      continue;
    }
    auto [it, inserted] = where.try_emplace({a.shard, a.req.room}, reply.committed.size());
    if (inserted) reply.committed.push_back(Committed{a.req.room, {}, {}});
    Committed& c = reply.committed[it->second];
    c.messages.push_back(std::move(a.req.msg));
    c.refs.push_back(a.req.ref);
  }
}

void LogWriter::answer_failed(Turn& turn, const std::string& reason) {
  for (auto& a : turn.appends) {
    stats_.append_failures.add();
    reply_for(turn, a.shard)
        .failed.push_back(AppendFailed{a.req.room, a.req.ref,
                                       a.rejected ? "message too large for the chat log" : reason});
  }
}

// ---- reads, after the commit so that they see it

void LogWriter::serve_reads(Turn& turn) {
  if (turn.opens.empty() && turn.reads.empty()) return;
  auto reader = store_->reader();
  if (!reader) RC_ERROR("chat log: cannot begin a read: {}", reader.status().message());
  Reader* r = reader ? &*reader : nullptr;
  for (auto& [shard, req] : turn.opens) serve_open(r, shard, req, turn);
  for (auto& [shard, req] : turn.reads) serve_read(r, shard, req, turn);
}

// Retention keeps a room's newest `retention` messages; older ones may still
// be on disk until their deletes run, but no read shows them (and none counts
// against `complete`), so readers see the same log whenever that happens.
std::uint64_t LogWriter::retained_after(const std::string& room) const {
  auto it = rooms_.find(room);
  if (it == rooms_.end() || it->second.last_seq <= options_.retention) return 0;
  return it->second.last_seq - options_.retention;
}

void LogWriter::serve_open(Reader* reader, std::uint32_t shard, OpenRequest& r, Turn& turn) {
  stats_.reads.add();
  Opened opened{std::move(r.room), 0, {}, true};
  if (auto it = rooms_.find(opened.room); it != rooms_.end()) opened.last_seq = it->second.last_seq;
  const std::uint32_t recent = std::min(r.recent, limits::read_messages_max);
  Result<Page> page = reader ? reader->page(opened.room, retained_after(opened.room), 0, recent)
                             : Result<Page>(Status::error("no read transaction"));
  if (page) {
    stats_.decrypt_failures.add(page->undecryptable);
    opened.recent = std::move(page->messages);
    opened.complete = page->complete;
  } else {
    RC_ERROR("chat log: reading room {} failed: {}", opened.room, page.status().message());
    opened.complete = opened.last_seq == 0;
  }
  reply_for(turn, shard).opened.push_back(std::move(opened));
}

void LogWriter::serve_read(Reader* reader, std::uint32_t shard, ReadRequest& r, Turn& turn) {
  stats_.reads.add();
  ReadResult result{std::move(r.room), r.ref, {}, true};
  const std::uint32_t limit = std::min(r.limit, limits::read_messages_max);
  const std::uint64_t after = std::max(r.after, retained_after(result.room));
  Result<Page> page = reader ? reader->page(result.room, after, r.before, limit)
                             : Result<Page>(Status::error("no read transaction"));
  if (page) {
    stats_.decrypt_failures.add(page->undecryptable);
    result.messages = std::move(page->messages);
    result.complete = page->complete;
  } else {
    RC_ERROR("chat log: reading room {} failed: {}", result.room, page.status().message());
    result.complete = false;
  }
  reply_for(turn, shard).reads.push_back(std::move(result));
}

// ---- delivery

// Hands each shard its reply, behind any reply it refused earlier. Returns
// true when nothing is left waiting. give_up: drop what is still refused
// (stop() has waited long enough).
bool LogWriter::flush_replies(Turn& turn, bool give_up) {
  bool all_delivered = true;
  for (std::uint32_t shard = 0; shard < options_.shards; ++shard) {
    auto& waiting = pending_[shard];
    if (turn.replies[shard]) waiting.push_back(std::move(turn.replies[shard]));
    while (!waiting.empty()) {
      if (deliver_(shard, std::move(waiting.front()))) {
        waiting.pop_front();
      } else if (!waiting.front()) {
        // The callee took the reply and still refused it: nothing to retry.
        stats_.replies_dropped.add();
        RC_ERROR("chat log: shard {} refused a reply it had taken; it is lost", shard);
        waiting.pop_front();
      } else {
        break;
      }
    }
    if (!waiting.empty() && give_up) {
      stats_.replies_dropped.add(waiting.size());
      RC_WARN("chat log: dropping {} replies shard {} did not take before the stop", waiting.size(),
              shard);
      waiting.clear();
    }
    all_delivered = all_delivered && waiting.empty();
  }
  return all_delivered;
}

}  // namespace rc::persist
