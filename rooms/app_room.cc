// Rooms on a shard: admission and the capacity queue, presence messages,
// one delta per room per tick (leading edge for quiet rooms), fan-out of the
// same frame to every member, slow clients, timers (PROTOCOL 3.1-3.3, 4).

#include <fmt/format.h>

#include "core/log.h"
#include "protocol/json_writer.h"
#include "protocol/outbound.h"
#include "rooms/app.h"

namespace rc::rooms {

void App::list(RoomEntry& e) {
  schedule_timer(e);  // what changed a room's timers also made it dirty
  if (e.listed) return;
  e.listed = true;
  listed_.push_back(&e);
}

RoomEntry& App::room_entry(const std::string& room_id) {
  auto it = rooms_.find(room_id);
  if (it == rooms_.end()) {
    it = rooms_.emplace(room_id, std::make_unique<RoomEntry>(room_id, room_rules_)).first;
    shard_.stats().rooms.add();
    if (auto b = retired_buckets_.find(room_id); b != retired_buckets_.end()) {
      it->second->room.give_left_buckets(std::move(b->second));
      retired_buckets_.erase(b);
    }
    request_open(*it->second);
  }
  return *it->second;
}

void App::enter_room(Session& s, std::string room_id) {
  RoomEntry& e = room_entry(room_id);
  s.entry = &e;
  if (!e.chat_ready) {
    // The room's chat state is on its way from the log; the welcome waits.
    s.opening = true;
    e.opening.push_back(&s);
    return;
  }
  const Config& cfg = ctx_.config;
  const bool has_place = e.room.has_member(s.who.user_id) || s.who.role == Role::kTeacher ||
                         (e.room.member_count() < cfg.room_capacity && e.queue.empty());
  if (has_place) {
    admit(e, s);
    return;
  }
  if (e.queue.size() < cfg.queue_capacity) {
    s.queued = true;
    e.queue.push_back(&s);
    send_queued(s, static_cast<std::uint32_t>(e.queue.size()));
    stats_.queued_total.add();
    count_room(e);
    release_early(s);  // handled by the queue's rules now
    return;
  }
  s.entry = nullptr;
  retire_if_empty(e);
  send_error(s, out::code::kRoomFull, fmt::format("room {} is full", e.room.id()));
  close_session(s, ws::close_code::kTryAgain, "room full", true);
}

void App::admit(RoomEntry& e, Session& s) {
  s.queued = false;
  s.member = &e.room.attach(s.who, shard_.now_ms());
  s.room_index = static_cast<std::uint32_t>(e.sessions.size());
  e.sessions.push_back(&s);
  list(e);
  send_welcome_or_resume(e, s);
}

void App::admit_from_queue(RoomEntry& e) {
  // While shutting down the queue stays put: its sessions get their 1001 too,
  // and a welcome right before it helps nobody.
  if (shutting_down_) return;
  const Config& cfg = ctx_.config;
  while (!e.queue.empty()) {
    Session& head = *e.queue.front();
    const bool fits = e.room.member_count() < cfg.room_capacity ||
                      e.room.has_member(head.who.user_id) || head.who.role == Role::kTeacher;
    if (!fits) break;
    e.queue.pop_front();
    e.queue_moved = true;
    admit(e, head);
    // The user's other sessions waiting further back are a member's further
    // devices now, and those never queue.
    for (auto it = e.queue.begin(); it != e.queue.end();) {
      Session& other = **it;
      if (other.who.user_id != head.who.user_id) {
        ++it;
        continue;
      }
      it = e.queue.erase(it);
      admit(e, other);
    }
  }
  if (e.queue_moved) list(e);
}

void App::leave_room(Session& s) {
  if (s.entry == nullptr) return;
  RoomEntry& e = *s.entry;
  s.entry = nullptr;
  if (s.opening) {
    std::erase(e.opening, &s);
    s.opening = false;
  } else if (s.queued) {
    for (auto it = e.queue.begin(); it != e.queue.end(); ++it) {
      if (*it == &s) {
        e.queue.erase(it);
        break;
      }
    }
    e.queue_moved = true;
    list(e);
  } else if (s.member != nullptr) {
    Session* last = e.sessions.back();
    e.sessions[s.room_index] = last;
    last->room_index = s.room_index;
    e.sessions.pop_back();
    const std::size_t before = e.room.member_count();
    e.room.detach(*s.member, s.client_closed, shard_.now_ms());
    s.member = nullptr;
    list(e);
    if (e.room.member_count() < before) admit_from_queue(e);
  }
  retire_if_empty(e);
}

void App::retire_if_empty(RoomEntry& e) {
  if (!e.retiring && e.sessions.empty() && e.queue.empty() && e.opening.empty() &&
      e.room.member_count() == 0) {
    e.retiring = true;
    retiring_.push_back(&e);
  }
}

void App::on_room_message(Session& s, const msg::ClientMessage& m) {
  RoomEntry& e = *s.entry;
  switch (m.type) {
    case msg::Type::kPresence: {
      Status st = e.room.apply(*s.member, m.presence, shard_.now_ms(), wall_ms());
      if (!st) {
        send_error(s, out::code::kBadRequest, st.message(), m.client_id);
        return;
      }
      stats_.presence_total.add();
      list(e);
      return;
    }
    case msg::Type::kSync:
      send_sync(e, s);
      return;
    case msg::Type::kLowerHands:
      if (s.who.role != Role::kTeacher) {
        send_error(s, out::code::kForbidden, "lower_hands: teachers only", m.client_id);
        return;
      }
      e.room.lower_hands();
      list(e);
      return;
    case msg::Type::kChat:
      on_chat(e, s, m);
      return;
    case msg::Type::kHistory:
      on_history(e, s, m);
      return;
    case msg::Type::kPing:
      return;  // answered before
  }
}

void App::on_queued_message(Session& s, const msg::ClientMessage& m) {
  send_error(s, out::code::kForbidden, "waiting in the room's queue", m.client_id);
}

void App::send_sync(RoomEntry& e, Session& s) {
  scratch_.clear();
  e.room.build_sync(scratch_, s.member);
  send_json(s, scratch_);
  stats_.syncs_total.add();
}

void App::send_presence(Session& s, const FrameRef& frame) {
  if (s.needs_sync || !s.welcomed) return;
  const std::uint64_t limit = ctx_.config.slow_client_bytes;
  if (shard_.unsent_bytes(s.id) > limit) {
    // Presence is never stale and never piles up: skip deltas until the
    // client drains, then send one sync (on_drained).
    s.needs_sync = true;
    shard_.watch_drain(s.id, limit / 2);
    stats_.slow_clients_total.add();
    return;
  }
  shard_.send(s.id, frame);
}

void App::on_drained(ConnId id) {
  Session* s = find(id);
  if (s == nullptr || !s->needs_sync || s->entry == nullptr || s->member == nullptr) return;
  if (!s->welcomed) return;
  s->needs_sync = false;
  send_sync(*s->entry, *s);
}

void App::flush(RoomEntry& e) {
  if (e.room.dirty()) {
    scratch_.clear();
    if (e.room.build_delta(scratch_)) {
      FrameRef frame = out::text(scratch_);
      for (Session* s : e.sessions) send_presence(*s, frame);
      e.sent_interval = shard_.tick_number();
      stats_.deltas_total.add();
      stats_.delta_bytes_total.add(frame.size());
    }
  }
  if (e.queue_moved) send_queue_positions(e);
  count_room(e);
}

void App::count_room(RoomEntry& e) {
  auto follow = [](Counter& gauge, std::size_t& counted, std::size_t now) {
    if (now > counted) gauge.add(now - counted);
    if (now < counted) gauge.sub(counted - now);
    counted = now;
  };
  follow(stats_.members, e.members_counted, e.room.member_count());
  follow(stats_.queued, e.queued_counted, e.queue.size());
}

void App::send_queued(Session& s, std::uint32_t position) {
  s.queue_pos_sent = position;
  scratch_.clear();
  json::Writer(scratch_).begin_object().field("type", "queued").field("position", position).end_object();
  send_json(s, scratch_);
}

void App::send_queue_positions(RoomEntry& e) {
  e.queue_moved = false;
  std::uint32_t pos = 0;
  for (Session* s : e.queue) {
    ++pos;
    if (s->queue_pos_sent != pos) send_queued(*s, pos);
  }
}

void App::on_loop_end(std::int64_t) {
  // Messages held until the welcome, in order, before anything they change
  // goes out below.
  std::vector<ConnId> due;
  due.swap(early_due_);
  for (ConnId id : due) {
    Session* s = find(id);
    if (s == nullptr || !s->early) continue;
    std::unique_ptr<EarlyMessages> early = std::move(s->early);
    for (std::string& text : early->held) {
      s = find(id);  // handling one may end or close the session
      if (s == nullptr || s->phase != Session::Phase::kOpen) break;
      handle_text(*s, reinterpret_cast<std::uint8_t*>(text.data()),
                  text.size() - limits::read_padding_bytes);
    }
    s = find(id);
    if (early->dropped > 0 && s != nullptr && s->phase == Session::Phase::kOpen) {
      send_error(
          *s, out::code::kRateLimited,
          fmt::format("{} messages sent before the welcome were dropped (at most {} are kept)",
                      early->dropped, limits::early_messages_max));
    }
  }
  // Leading edge: a room that sent nothing during the previous tick sends
  // its first change now; the others wait for the tick end.
  std::size_t keep = 0;
  const std::int64_t tick = shard_.tick_number();
  for (RoomEntry* e : listed_) {
    if (e->sent_interval < tick - 1 && !e->queue_moved) {
      e->listed = false;
      flush(*e);
    } else {
      listed_[keep++] = e;
    }
  }
  listed_.resize(keep);
  std::vector<RoomEntry*> kept;
  for (RoomEntry* e : retiring_) {
    e->retiring = false;
    if (!e->sessions.empty() || !e->queue.empty() || !e->opening.empty() ||
        e->room.member_count() != 0) {
      continue;
    }
    if (e->listed) {
      // Its last delta has not gone out yet: retire it after that.
      e->retiring = true;
      kept.push_back(e);
      continue;
    }
    if (e->timer_due != INT64_MAX) timers_.erase({e->timer_due, e});
    count_room(*e);  // to nothing
    if (LeftBuckets b = e->room.take_left_buckets(); !b.empty()) {
      retired_buckets_[e->room.id()] = std::move(b);
    }
    rooms_.erase(e->room.id());
    shard_.stats().rooms.sub();
  }
  retiring_.swap(kept);
}

void App::on_tick(std::int64_t now) {
  const std::int64_t started = monotonic_us();
  run_timers(now);
  std::vector<RoomEntry*> due;
  due.swap(listed_);
  for (RoomEntry* e : due) {
    e->listed = false;
    flush(*e);
    retire_if_empty(*e);
  }
  due.clear();
  listed_.swap(due);  // keep the capacity
  stats_.tick_us.observe(static_cast<std::uint64_t>(monotonic_us() - started));
}

void App::schedule_timer(RoomEntry& e) {
  const std::int64_t at = e.room.next_timer_ms();
  if (at >= e.timer_due) return;
  if (e.timer_due != INT64_MAX) timers_.erase({e.timer_due, &e});
  e.timer_due = at;
  timers_.emplace(at, &e);
}

void App::run_timers(std::int64_t now) {
  while (!timers_.empty() && timers_.begin()->first <= now) {
    RoomEntry& e = *timers_.begin()->second;
    timers_.erase(timers_.begin());
    e.timer_due = INT64_MAX;
    if (e.room.sweep(now)) {
      admit_from_queue(e);
      retire_if_empty(e);
    }
    if (e.room.dirty()) {
      list(e);
    } else {
      schedule_timer(e);
    }
  }
}

void App::sweep_rooms() {
  const std::int64_t now = shard_.now_ms();
  for (auto it = retired_buckets_.begin(); it != retired_buckets_.end();) {
    prune_left_buckets(it->second, now, room_rules_.chat_refill_ms);
    it = it->second.empty() ? retired_buckets_.erase(it) : std::next(it);
  }
  for (auto& [id, e] : rooms_) {
    if (!e->chat_ready && !e->open_requested) request_open(*e);
    e->room.compact(now);
    count_room(*e);  // the gauges follow every delta; this catches the rest
  }
}

}  // namespace rc::rooms
