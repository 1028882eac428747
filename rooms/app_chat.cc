// Chat on a shard: messages go to the chat log (non-blocking), come back
// committed and durable, and only then are broadcast; welcome and resume
// history come from the room's memory of its newest messages, or from the
// log when a client asks for more (PROTOCOL 3.1, 3.2, 5, 6).

#include <fmt/format.h>

#include <algorithm>

#include "core/log.h"
#include "protocol/json_writer.h"
#include "protocol/outbound.h"
#include "rooms/app.h"

namespace rc::rooms {
namespace {

void write_chat(json::Writer& w, const persist::ChatMessage& m) {
  w.begin_object()
      .field("seq", m.seq)
      .field("user_id", std::string_view(m.user_id))
      .field("name", std::string_view(m.name))
      .field("text", std::string_view(m.text))
      .field("ts", m.ts_ms);
  if (!m.client_id.empty()) w.field("client_id", std::string_view(m.client_id));
  w.end_object();
}

}  // namespace

template <typename Messages>
void App::send_welcome(RoomEntry& e, Session& s, const Messages& msgs, std::size_t first,
                       bool complete) {
  std::string members;
  e.room.write_members(members, s.member);
  scratch_.clear();
  json::Writer w(scratch_);
  w.begin_object()
      .field("type", "welcome")
      .field("room", std::string_view(e.room.id()))
      .field("user_id", std::string_view(s.who.user_id))
      .field("session_id", std::string_view(s.session_id))
      .field("role", role_name(s.who.role))
      .field("tick_ms", ctx_.config.tick_ms)
      .field("tick", e.room.tick())
      .key("members")
      .raw(members)
      .key("chat")
      .begin_object()
      .key("messages")
      .begin_array();
  for (std::size_t i = first; i < msgs.size(); ++i) write_chat(w, msgs[i]);
  w.end_array().field("last_seq", e.last_seq).field("complete", complete).end_object().end_object();
  send_json(s, scratch_);
  s.welcomed = true;
  release_early(s);
}

// The room's memory of its newest messages: what a welcome shows, and never
// more than the log retains (retention deletes the rest within a minute).
std::size_t App::recent_max() const {
  return static_cast<std::size_t>(
      std::min<std::uint64_t>(ctx_.config.history_on_join, ctx_.config.chat_retention));
}

void App::trim_recent(RoomEntry& e) {
  while (e.recent.size() > recent_max()) {
    // A message retention still keeps is left out of the welcome; one beyond
    // it is gone from the log too (reads never show it).
    if (e.recent.front().seq + ctx_.config.chat_retention > e.last_seq) e.recent_complete = false;
    e.recent.pop_front();
  }
}

void App::on_mail(Mail& mail) {
  if (mail.app_kind != kMailLogReply) return;
  std::unique_ptr<persist::LogReply> reply(static_cast<persist::LogReply*>(mail.payload));
  mail.payload = nullptr;
  on_log_reply(*reply);
}

void App::request_open(RoomEntry& e) {
  persist::OpenRequest r;
  r.room = e.room.id();
  r.recent = ctx_.config.history_on_join;
  // A full log inbox is retried by the once-a-second sweep.
  e.open_requested = ctx_.log.open(shard_.index(), std::move(r));
}

void App::on_log_reply(persist::LogReply& r) {
  // Commits first: a read answered in the same batch was served after them
  // and already holds their messages (see send_welcome_or_resume).
  for (persist::Committed& c : r.committed) on_committed(c);
  for (persist::AppendFailed& f : r.failed) {
    --appends_in_flight_;
    Session* s = find(f.ref);
    if (s != nullptr && s->phase == Session::Phase::kOpen) {
      send_error(*s, out::code::kInternal, fmt::format("chat message not stored: {}", f.reason));
    }
  }
  for (persist::Opened& o : r.opened) on_opened(o);
  for (persist::ReadResult& rd : r.reads) on_read(rd);
  if (shutting_down_ && !shutdown_closed_ && appends_in_flight_ == 0) close_all_for_shutdown();
}

void App::on_opened(persist::Opened& o) {
  auto it = rooms_.find(o.room);
  if (it == rooms_.end() || it->second->chat_ready) return;
  RoomEntry& e = *it->second;
  e.chat_ready = true;
  e.last_seq = o.last_seq;
  e.recent.assign(std::make_move_iterator(o.recent.begin()), std::make_move_iterator(o.recent.end()));
  e.recent_complete = o.complete;
  trim_recent(e);
  std::vector<Session*> waiting;
  waiting.swap(e.opening);
  for (Session* s : waiting) {
    s->opening = false;
    s->entry = nullptr;
    enter_room(*s, e.room.id());
  }
}

void App::on_committed(persist::Committed& c) {
  appends_in_flight_ -= c.messages.size();
  auto it = rooms_.find(c.room);
  if (it == rooms_.end() || c.messages.empty()) return;
  RoomEntry& e = *it->second;
  scratch_.clear();
  json::Writer w(scratch_);
  w.begin_object().field("type", "chat").key("messages").begin_array();
  for (const persist::ChatMessage& m : c.messages) write_chat(w, m);
  w.end_array().end_object();
  FrameRef frame = out::text(scratch_);
  for (persist::ChatMessage& m : c.messages) {
    e.last_seq = m.seq;
    e.recent.push_back(std::move(m));
  }
  trim_recent(e);
  stats_.chat_broadcast_total.add(c.messages.size());
  // Chat is never skipped; a session that cannot keep up is closed instead
  // and resumes with since=S.
  std::vector<Session*> too_slow;
  for (Session* s : e.sessions) {
    if (!s->welcomed) continue;
    // Judged by what the client has not taken yet: a reader that keeps up
    // is never closed, however large one commit's frame is.
    if (shard_.unsent_bytes(s->id) > ctx_.config.max_outbound_bytes) {
      too_slow.push_back(s);
      continue;
    }
    shard_.send(s->id, frame);
  }
  for (Session* s : too_slow) {
    stats_.slow_consumers_total.add();
    close_session(*s, ws::close_code::kPolicy, "slow consumer", false);
  }
}

void App::on_read(persist::ReadResult& r) {
  Session* s = find(r.ref);
  if (s == nullptr || s->phase != Session::Phase::kOpen || s->entry == nullptr ||
      s->entry->room.id() != r.room) {
    return;  // the session went away meanwhile
  }
  if (s->awaiting_resume) {
    s->awaiting_resume = false;
    send_welcome(*s->entry, *s, r.messages, 0, r.complete);
    return;
  }
  scratch_.clear();
  json::Writer w(scratch_);
  w.begin_object().field("type", "history").key("messages").begin_array();
  for (const persist::ChatMessage& m : r.messages) write_chat(w, m);
  w.end_array().field("complete", r.complete).end_object();
  send_json(*s, scratch_);
}

bool App::take_chat_token(Member& m) {
  const double rate = ctx_.config.chat_rate;
  const double burst = kChatBurstSeconds * rate;
  const std::int64_t now = shard_.now_ms();
  if (m.chat_tokens < 0) {
    m.chat_tokens = burst;
  } else {
    m.chat_tokens = std::min(burst, m.chat_tokens + static_cast<double>(now - m.chat_refill_ms) * rate / 1000.0);
  }
  m.chat_refill_ms = now;
  if (m.chat_tokens < 1) return false;
  m.chat_tokens -= 1;
  return true;
}

void App::on_chat(RoomEntry& e, Session& s, const msg::ClientMessage& m) {
  if (shutting_down_) {
    send_error(s, out::code::kShuttingDown, "the server is shutting down", m.chat.client_id);
    return;
  }
  if (!take_chat_token(*s.member)) {
    stats_.chat_rate_limited_total.add();
    send_error(s, out::code::kRateLimited,
               fmt::format("at most {} chat messages per second", ctx_.config.chat_rate), m.chat.client_id);
    return;
  }
  persist::AppendRequest r;
  r.room = e.room.id();
  r.msg.ts_ms = wall_ms();
  r.msg.user_id = s.who.user_id;
  r.msg.name = s.member->now.name;
  r.msg.text.assign(m.chat.text);
  r.msg.client_id.assign(m.chat.client_id);
  r.ref = s.id;
  if (!ctx_.log.append(shard_.index(), std::move(r))) {
    send_error(s, out::code::kInternal, "the chat log is busy; try again", m.chat.client_id);
    return;
  }
  ++appends_in_flight_;
  stats_.chat_accepted_total.add();
  e.room.activity(*s.member, shard_.now_ms());
  list(e);
}

void App::on_history(RoomEntry& e, Session& s, const msg::ClientMessage& m) {
  persist::ReadRequest r;
  r.room = e.room.id();
  r.before = m.history.before;
  r.limit = m.history.limit;
  r.ref = s.id;
  if (!ctx_.log.read(shard_.index(), std::move(r))) {
    send_error(s, out::code::kInternal, "the chat log is busy; try again", m.client_id);
  }
}

void App::send_welcome_or_resume(RoomEntry& e, Session& s) {
  if (!s.has_since) {
    send_welcome(e, s, e.recent, 0, e.recent_complete);
    return;
  }
  const std::uint64_t since = s.since;
  if (since >= e.last_seq) {
    send_welcome(e, s, e.recent, e.recent.size(), true);
    return;
  }
  if (!e.recent.empty() && e.recent.front().seq <= since + 1) {
    // Everything after `since` is in memory (seqs in `recent` are consecutive).
    std::size_t first = static_cast<std::size_t>(since + 1 - e.recent.front().seq);
    bool complete = true;
    if (e.recent.size() - first > limits::resume_messages_max) {
      first = e.recent.size() - limits::resume_messages_max;
      complete = false;
    }
    send_welcome(e, s, e.recent, first, complete);
    return;
  }
  persist::ReadRequest r;
  r.room = e.room.id();
  r.after = since;
  r.limit = limits::resume_messages_max;
  r.ref = s.id;
  s.awaiting_resume = ctx_.log.read(shard_.index(), std::move(r));
  if (!s.awaiting_resume) send_welcome(e, s, e.recent, 0, false);
}

void App::close_all_for_shutdown() {
  shutdown_closed_ = true;
  std::vector<Session*> all(sessions_);
  for (Session* s : all) {
    if (s->phase == Session::Phase::kOpen) {
      close_session(*s, ws::close_code::kGoingAway, "server shutting down", true);
    } else if (s->phase == Session::Phase::kHttp && s->answered) {
      end_session(*s);  // idle between kept-alive requests
    }
    // A connection still to send its first request may have sent it already
    // (the signal came between its accept and its bytes): it is answered, or
    // closed after kShutdownHeadTimeoutMs (App::on_sweep).
  }
}

}  // namespace rc::rooms
