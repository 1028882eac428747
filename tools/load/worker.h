#pragma once
// One rollcall-load thread: its share of the client sessions (the transport
// is SessionIo, session_io.h) and what the sessions do with the protocol:
// presence updates applied to a per-client model of the room, chat messages
// sent and their acks checked (tools/load/chat.h), pings answered.
//
// The main thread moves every worker through the phases of shared.h; a worker
// notices a phase change within kPollNsMax and does that phase's step once
// (seeding the send schedule, sending the sync probes, comparing models,
// reporting its chat drained, starting the close handshakes).
//
// Sending: presence and open-loop chat keep one due time per client in a
// heap, on a jittered schedule around the client's rate. Closed-loop chat
// (--inflight K) keeps K messages unanswered per client: an answer makes the
// client due again at once.
//
// Threading: a Worker is created and filled (add()) by the main thread before
// its thread starts; from then on only its own thread touches it, apart from
// Shared's atomics. counters() and chat_streams() are read by the main thread
// after join().
//
// Parsing shortcut: a delta or a chat broadcast goes out as the same bytes to
// every member of a room, so a worker keeps, per room, the bytes and the
// parse of the last kCacheSlots of them it decoded (slot = tick or first seq
// % kCacheSlots). A client whose frame is byte-for-byte a cached one (memcmp)
// reuses the parse; it still receives, reads and applies every frame itself.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "tools/load/session_io.h"

namespace rc::load {

class Worker : public SessionIo {
 public:
  Worker(Shared& shared, std::uint32_t index)
      : SessionIo(shared, index),
        chat_(s_.mode == Mode::kChat),
        what_(s_.mode == Mode::kPresence ? kParseMembers
              : chat_                    ? kParseChat
                                         : kParseKind) {
    if (what_ != kParseKind) cache_.resize(std::size_t{s_.rooms} * kCacheSlots);
    const double seconds = s_.duration_s + 1;
    counters_.frames_per_second.assign(static_cast<std::size_t>(seconds), 0);
    period_ns_ = s_.rate_hz > 0 ? static_cast<std::int64_t>(1e9 / s_.rate_hz) : 0;
    if (chat_) text_ = chat_text(s_.text_bytes);
  }

  void add(std::uint32_t room, std::uint32_t member, std::uint32_t source, bool probe) {
    Client& c = add_client(room, member, source);
    c.probe = probe;
    if (s_.mode == Mode::kPresence) c.model = RoomModel(s_.members_per_room);
  }

  void run() {
    if (!start_io()) return;
    Phase seen = Phase::kConnect;
    while (true) {
      const Phase p = shared_.current();
      const std::int64_t now = mono_ns();
      while (seen < p) {
        seen = static_cast<Phase>(static_cast<int>(seen) + 1);
        enter(seen, now);
      }
      if (p == Phase::kDone) break;
      if (p <= Phase::kRun) open_more(now);
      if (p == Phase::kRun) send_due(now);
      if (p == Phase::kStop && chat_ && !drain_reported_ && now >= next_drain_ns_) {
        next_drain_ns_ = now + kDrainPassNs;
        if (unanswered() == 0) report_step(drain_reported_);
      }
      if (p == Phase::kSettle && now >= next_settle_ns_) {
        settle(false);
        next_settle_ns_ = now + kSettlePassNs;
      }
      if (p == Phase::kClose && !close_reported_ && (open_fds_ == 0 || now >= close_deadline_ns_)) {
        report_step(close_reported_);
      }
      std::int64_t wait = kPollNsMax;
      if (p == Phase::kRun && !heap_.empty())
        wait = std::clamp<std::int64_t>(heap_.top().first - now, 0, wait);
      poll_once(wait);
    }
    for (Client& c : clients_) {
      counters_.client_deltas_per_s_max = std::max(counters_.client_deltas_per_s_max, c.sec_deltas);
      counters_.unanswered += c.chat.in_flight();
      if (c.fd >= 0) end(c);
    }
  }

  // Chat: each client's view of its room's stream (after join()).
  std::vector<ChatStream> chat_streams() const {
    std::vector<ChatStream> out;
    out.reserve(clients_.size());
    for (const Client& c : clients_) {
      ChatStream st;
      st.room = c.room;
      st.open = c.chat.started() && c.open_at_close;
      st.first_seq = c.chat.first_seq();
      st.last_seq = c.chat.last_seq();
      st.seen = c.chat.seen();
      st.hash = c.chat.stream_hash();
      out.push_back(st);
    }
    return out;
  }

  // The text of every chat message: `bytes` printable ASCII characters,
  // words and spaces, neither starting nor ending with a space (the server
  // trims), so that the stored text is exactly what was sent.
  static std::string chat_text(std::size_t bytes) {
    static constexpr std::string_view kWords = "lorem ipsum dolor sit amet consectetur ";
    std::string t;
    t.reserve(bytes);
    while (t.size() < bytes) t += kWords[t.size() % kWords.size()];
    if (!t.empty() && t.back() == ' ') t.back() = '.';
    return t;
  }

 private:
  using Due = std::pair<std::int64_t, std::uint32_t>;

  struct Cached {
    std::string bytes;
    ServerMessage msg;
  };

  void report_step(bool& reported) {
    reported = true;
    shared_.workers_at_phase.fetch_add(1, std::memory_order_acq_rel);
  }

  std::uint64_t unanswered() const {
    std::uint64_t n = 0;
    for (const Client& c : clients_) {
      if (c.state == State::kReady) n += c.chat.in_flight();
    }
    return n;
  }

  // ---- phases

  void enter(Phase p, std::int64_t now) {
    const bool presence = s_.mode == Mode::kPresence;
    switch (p) {
      case Phase::kRun:
        seed_schedule(now);
        return;
      case Phase::kSync:
        if (!presence) return;
        for (Client& c : clients_) {
          if (!c.probe || c.state != State::kReady) continue;
          c.sync_requested = true;
          send_text(c, R"({"type":"sync"})");
          ++counters_.probes_sent;
        }
        shared_.probes_sent.fetch_add(counters_.probes_sent, std::memory_order_acq_rel);
        shared_.workers_at_phase.fetch_add(1, std::memory_order_acq_rel);
        return;
      case Phase::kSettle: {
        if (!presence) return;
        std::uint64_t open = 0;
        for (const Client& c : clients_) open += c.state == State::kReady ? 1 : 0;
        shared_.to_settle.fetch_add(open, std::memory_order_acq_rel);
        shared_.workers_at_phase.fetch_add(1, std::memory_order_acq_rel);
        return;
      }
      case Phase::kCompare:
        if (!presence) return;
        settle(true);
        shared_.workers_at_phase.fetch_add(1, std::memory_order_acq_rel);
        return;
      case Phase::kClose:
        start_closing(now);
        return;
      default:
        return;
    }
  }

  // Open loop: each client's first send at a random point of its period.
  // Closed loop: every client is due at once (it fills its K in flight).
  void seed_schedule(std::int64_t now) {
    const bool closed_loop = chat_ && s_.inflight > 0;
    if (s_.mode == Mode::kIdle || (!closed_loop && period_ns_ == 0)) return;
    for (std::uint32_t i = 0; i < clients_.size(); ++i) {
      const auto offset =
          closed_loop ? 0
                      : static_cast<std::int64_t>(rng_.unit() * static_cast<double>(period_ns_));
      heap_.push({now + offset, i});
    }
  }

  void start_closing(std::int64_t now) {
    close_deadline_ns_ = now + kCloseWaitNs;
    for (Client& c : clients_) {
      if (c.fd < 0) continue;
      if (c.state != State::kOpen && c.state != State::kReady) {
        end(c);
        continue;
      }
      c.state = State::kClosing;
      c.open_at_close = true;
      c.close_sent = true;
      append_masked_frame(c.out, kClose, close_payload(ws::close_code::kNormal),
                          static_cast<std::uint32_t>(rng_.next()));
      flush(c);
    }
  }

  // A client has converged once its model equals its room's truth: after
  // the sync no change happens, so later deltas cannot move it away again.
  // At the deadline (final) the clients still apart are the mismatches.
  void settle(bool final) {
    std::uint64_t newly = 0;
    for (Client& c : clients_) {
      if (c.settled || c.state != State::kReady || c.room >= shared_.truth.size()) continue;
      if (shared_.truth_ready[c.room].load(std::memory_order_acquire) == 0) {
        if (final) ++counters_.clients_unchecked;
        continue;
      }
      const std::size_t d = c.model.differences(shared_.truth[c.room]);
      if (d != 0 && !final) continue;
      c.settled = true;
      ++counters_.clients_compared;
      if (d == 0) {
        ++newly;
      } else {
        ++counters_.clients_mismatched;
        counters_.entries_mismatched += d;
      }
    }
    if (newly != 0) shared_.settled.fetch_add(newly, std::memory_order_acq_rel);
  }

  // ---- messages

  const ServerMessage* decode(Client& c, const std::uint8_t* data, std::size_t len,
                              std::size_t capacity) {
    Cached* slot = nullptr;
    std::uint64_t key = 0;
    if (what_ != kParseKind && cache_key(data, len, key)) {
      slot = &cache_[c.room * kCacheSlots + key % kCacheSlots];
      if (slot->bytes.size() == len && std::memcmp(slot->bytes.data(), data, len) == 0)
        return &slot->msg;
    }
    if (!parser_.parse(data, len, capacity, what_, scratch_)) return nullptr;
    if (slot == nullptr || (scratch_.kind != Kind::kDelta && scratch_.kind != Kind::kChat))
      return &scratch_;
    slot->bytes.assign(reinterpret_cast<const char*>(data), len);
    std::swap(slot->msg, scratch_);
    return &slot->msg;
  }

  // The tick of a delta, or the first seq of a chat broadcast, written the
  // way the servers write them (type first): only a cache key, the cached
  // bytes are compared in full.
  static bool cache_key(const std::uint8_t* data, std::size_t len, std::uint64_t& key) {
    static constexpr std::string_view kDelta = R"({"type":"delta","tick":)";
    static constexpr std::string_view kChat = R"({"type":"chat","messages":[{"seq":)";
    std::size_t i = 0;
    if (len > kDelta.size() && std::memcmp(data, kDelta.data(), kDelta.size()) == 0) {
      i = kDelta.size();
    } else if (len > kChat.size() && std::memcmp(data, kChat.data(), kChat.size()) == 0) {
      i = kChat.size();
    } else {
      return false;
    }
    if (data[i] < '0' || data[i] > '9') return false;
    key = 0;
    for (; i < len && data[i] >= '0' && data[i] <= '9'; ++i) key = key * 10 + (data[i] - '0');
    return true;
  }

  void on_message(Client& c, const std::uint8_t* data, std::size_t len,
                  std::size_t capacity) override {
    ++counters_.frames_total;
    const bool window = in_window();
    if (window) {
      ++counters_.frames;
      const auto sec = static_cast<std::size_t>(
          (recv_ns_ - shared_.window_start_ns.load(std::memory_order_relaxed)) / 1000000000);
      if (sec < counters_.frames_per_second.size()) ++counters_.frames_per_second[sec];
    }
    const ServerMessage* m = decode(c, data, len, capacity);
    if (m == nullptr) {
      ++counters_.protocol_errors;
      return;
    }
    switch (m->kind) {
      case Kind::kWelcome:
        on_welcome(c, *m);
        return;
      case Kind::kDelta:
        on_delta(c, *m, window);
        return;
      case Kind::kSync:
        on_sync(c, *m);
        return;
      case Kind::kChat:
        if (chat_) on_chat(c, *m, window);
        return;
      case Kind::kQueued:
        ++counters_.queued_messages;
        return;
      case Kind::kError:
        ++counters_.errors_received;
        ++counters_.error_codes[m->code];
        if (chat_ && m->has_ref) on_answer(c, m->ref, false, window);
        return;
      default:
        return;
    }
  }

  void on_welcome(Client& c, const ServerMessage& m) {
    if (c.state == State::kOpen) {
      set_state(c, State::kReady);
      shared_.ready.fetch_add(1, std::memory_order_acq_rel);
    }
    if (m.tick_ms >= 0) shared_.tick_ms.store(m.tick_ms, std::memory_order_relaxed);
    if (s_.mode == Mode::kPresence) c.model.replace(m.members);
    if (chat_ && !c.chat.started()) c.chat.start(m.has_last_seq ? m.last_seq : 0);
    c.has_tick = m.has_tick;
    c.last_tick = m.tick;
  }

  void on_delta(Client& c, const ServerMessage& m, bool window) {
    if (window) {
      ++counters_.deltas;
      const std::int64_t sec =
          (recv_ns_ - shared_.window_start_ns.load(std::memory_order_relaxed)) / 1000000000;
      if (sec != c.second) {
        counters_.client_deltas_per_s_max =
            std::max(counters_.client_deltas_per_s_max, c.sec_deltas);
        c.second = sec;
        c.sec_deltas = 0;
      }
      ++c.sec_deltas;
    }
    // Only inside the window: the final sync probe moves its room's tick too.
    if (window && c.has_tick && m.has_tick && m.tick != c.last_tick + 1) ++counters_.tick_gaps;
    if (m.has_tick) {
      c.has_tick = true;
      c.last_tick = m.tick;
    }
    if (s_.mode != Mode::kPresence) return;
    counters_.foreign_entries += m.foreign;
    for (const MemberFields& e : m.joined) {
      if (!c.model.upsert(e)) ++counters_.model_anomalies;
      if (window) sample(e);
    }
    for (const MemberFields& e : m.updated) {
      if (!c.model.update(e)) ++counters_.model_anomalies;
      if (window) sample(e);
    }
    for (std::int32_t i : m.left) {
      if (!c.model.remove(i)) ++counters_.model_anomalies;
    }
  }

  void sample(const MemberFields& e) {
    if (!e.has_text || e.stamp <= 0) return;
    ++counters_.deliveries;
    const std::int64_t lat = recv_wall_us_ - e.stamp;
    counters_.latency_us.add(lat > 0 ? static_cast<std::uint64_t>(lat) : 0);
  }

  void on_sync(Client& c, const ServerMessage& m) {
    if (s_.mode == Mode::kPresence) c.model.replace(m.members);
    if (m.has_tick) {
      c.has_tick = true;
      c.last_tick = m.tick;
    }
    if (!c.sync_requested) {
      ++counters_.unrequested_syncs;
      return;
    }
    c.sync_requested = false;
    if (s_.mode != Mode::kPresence || c.room >= shared_.truth.size()) return;
    shared_.truth[c.room] = c.model;
    shared_.truth_ready[c.room].store(1, std::memory_order_release);
    shared_.synced.fetch_add(1, std::memory_order_acq_rel);
  }

  // ---- chat

  // A committed broadcast: every message is a delivery to this member and
  // moves its view of the room's seqs; the member's own messages are acks.
  void on_chat(Client& c, const ServerMessage& m, bool window) {
    for (const ChatEntry& e : m.chat) {
      const bool own = e.has_client_id && e.author == static_cast<std::int32_t>(c.member);
      if (!e.has_seq) {
        if (own) ++counters_.acks_without_seq;
      } else {
        switch (c.chat.see(e.seq, e.author, e.has_client_id ? e.id.n : 0)) {
          case SeqCheck::kGap:
            ++counters_.seq_gaps;
            break;
          case SeqCheck::kNotIncreasing:
            ++counters_.seq_not_increasing;
            break;
          default:
            break;
        }
      }
      if (!e.has_client_id) {
        ++counters_.foreign_chat;
        continue;
      }
      if (window) {
        ++counters_.deliveries;
        const std::int64_t lat = recv_wall_us_ - e.id.sent_us;
        counters_.latency_us.add(lat > 0 ? static_cast<std::uint64_t>(lat) : 0);
      }
      if (own) on_answer(c, e.id, true, window);
    }
  }

  // The one answer a message gets: its ack, or an error naming it.
  void on_answer(Client& c, const ClientId& id, bool ack, bool window) {
    switch (c.chat.answer(id.n)) {
      case AnswerCheck::kDuplicate:
        ++counters_.duplicate_answers;
        return;
      case AnswerCheck::kUnknown:
        ++counters_.unknown_answers;
        return;
      case AnswerCheck::kFirst:
        break;
    }
    if (ack) {
      ++counters_.acks_total;
      if (window) {
        ++counters_.acks;
        const std::int64_t lat = recv_wall_us_ - id.sent_us;
        counters_.ack_latency_us.add(lat > 0 ? static_cast<std::uint64_t>(lat) : 0);
      }
    } else {
      ++counters_.chat_refused;
    }
    if (s_.inflight > 0 && shared_.current() == Phase::kRun) {
      const auto idx = static_cast<std::uint32_t>(&c - clients_.data());
      heap_.push({recv_ns_ + (ack ? 0 : kRefusedBackoffNs), idx});
    }
  }

  // ---- sending

  void send_due(std::int64_t now) {
    const bool closed_loop = chat_ && s_.inflight > 0;
    while (!heap_.empty() && heap_.top().first <= now) {
      const Due d = heap_.top();
      heap_.pop();
      Client& c = clients_[d.second];
      if (c.state != State::kReady) continue;
      if (closed_loop) {
        while (c.fd >= 0 && c.chat.in_flight() < s_.inflight && send_chat(c, now)) {
        }
        // Skipped (too much unsent): try again shortly rather than stall.
        if (c.fd >= 0 && c.chat.in_flight() < s_.inflight)
          heap_.push({now + kRefusedBackoffNs, d.second});
        continue;
      }
      const std::int64_t late_ns = now - d.first;
      counters_.send_late_us_max =
          std::max<std::uint64_t>(counters_.send_late_us_max, late_ns / 1000);
      if (chat_) {
        send_chat(c, now);
      } else {
        send_presence(c, now);
      }
      // A jittered schedule around the rate; a generator that fell behind
      // by more than a period drops the backlog instead of bursting it.
      const std::int64_t base = std::max(d.first, now - period_ns_);
      const auto gap =
          static_cast<std::int64_t>((0.5 + rng_.unit()) * static_cast<double>(period_ns_));
      heap_.push({base + gap, d.second});
    }
  }

  bool sending_window(std::int64_t now) const {
    return now >= shared_.window_start_ns.load(std::memory_order_relaxed) &&
           now < shared_.window_end_ns.load(std::memory_order_relaxed);
  }

  void send_presence(Client& c, std::int64_t now) {
    if (c.out.size() - c.out_off > kUnsentBytesMax) {
      ++counters_.updates_skipped;
      return;
    }
    char payload[128];
    const double x = static_cast<double>(rng_.next() % 10001) / 10000.0;
    const int n = std::snprintf(payload, sizeof payload,
                                R"({"type":"presence","x":%.4f,"status_text":"t%lld"})", x,
                                static_cast<long long>(wall_us()));
    send_text(c, std::string_view(payload, static_cast<std::size_t>(n)));
    ++counters_.updates_sent_total;
    if (sending_window(now)) ++counters_.updates_sent;
  }

  // One chat message with a fresh client_id. False (and counted) when the
  // session has too much unsent or too many unanswered messages.
  bool send_chat(Client& c, std::int64_t now) {
    if (c.out.size() - c.out_off > kUnsentBytesMax || !c.chat.can_send()) {
      ++counters_.chat_skipped;
      return false;
    }
    char id[kClientIdBytesMax];
    const std::size_t id_len = format_client_id(id, wall_us(), c.chat.send());
    chat_buf_.assign(R"({"type":"chat","text":")");
    chat_buf_.append(text_).append(R"(","client_id":")").append(id, id_len).append(R"("})");
    send_text(c, chat_buf_);
    ++counters_.chat_sent_total;
    if (sending_window(now)) ++counters_.chat_sent;
    return true;
  }

  const bool chat_;
  const unsigned what_;  // kParse* bits: what the messages are parsed for
  std::vector<Cached> cache_;
  ServerMessageParser parser_;
  ServerMessage scratch_;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> heap_;
  std::int64_t period_ns_ = 0;
  std::string text_;      // chat: the text of every message
  std::string chat_buf_;  // chat: the message being sent
  std::int64_t close_deadline_ns_ = 0;
  bool close_reported_ = false;
  bool drain_reported_ = false;
  std::int64_t next_drain_ns_ = 0;
  std::int64_t next_settle_ns_ = 0;
};

}  // namespace rc::load
