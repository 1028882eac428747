#include "rooms/room.h"

#include "protocol/json_writer.h"

namespace rc::rooms {

std::string_view status_name(msg::UserStatus s) {
  switch (s) {
    case msg::UserStatus::kOnline:
      return "online";
    case msg::UserStatus::kAway:
      return "away";
    case msg::UserStatus::kBusy:
      return "busy";
    case msg::UserStatus::kIdle:
      return "idle";
  }
  return "online";
}

std::string_view role_name(Role r) { return r == Role::kTeacher ? "teacher" : "student"; }

namespace {

// Bits of the fields that changed between two states.
enum Changed : std::uint16_t {
  kX = 1 << 0,
  kY = 1 << 1,
  kEmoji = 1 << 2,
  kHand = 1 << 3,
  kHandAt = 1 << 4,
  kStatus = 1 << 5,
  kStatusText = 1 << 6,
  kName = 1 << 7,
  kDevices = 1 << 8,
  kConnected = 1 << 9,
  kRole = 1 << 10,
};

std::uint16_t diff(const MemberState& a, const MemberState& b) {
  std::uint16_t d = 0;
  if (a.x != b.x) d |= kX;
  if (a.y != b.y) d |= kY;
  if (a.emoji != b.emoji) d |= kEmoji;
  if (a.hand != b.hand) d |= kHand;
  if (a.hand_at_ms != b.hand_at_ms) d |= kHandAt;
  if (a.status != b.status) d |= kStatus;
  if (a.status_text != b.status_text) d |= kStatusText;
  if (a.name != b.name) d |= kName;
  if (a.devices != b.devices) d |= kDevices;
  if (a.connected != b.connected) d |= kConnected;
  if (a.role != b.role) d |= kRole;
  return d;
}

void write_fields(json::Writer& w, const MemberState& s, std::uint16_t which) {
  if (which & kName) w.field("name", std::string_view(s.name));
  if (which & kRole) w.field("role", role_name(s.role));
  if (which & kX) w.field("x", s.x);
  if (which & kY) w.field("y", s.y);
  if (which & kEmoji) w.field("emoji", std::string_view(s.emoji));
  if (which & kHand) w.field("hand", s.hand);
  if (which & kHandAt) w.field("hand_at", s.hand_at_ms);
  if (which & kStatus) w.field("status", status_name(s.status));
  if (which & kStatusText) w.field("status_text", std::string_view(s.status_text));
  if (which & kDevices) w.field("devices", s.devices);
  if (which & kConnected) w.field("connected", s.connected);
}

void write_member(json::Writer& w, std::string_view user_id, const MemberState& s) {
  w.begin_object().field("user_id", user_id);
  write_fields(w, s,
               kName | kRole | kX | kY | kEmoji | kHand | kHandAt | kStatus | kStatusText |
                   kDevices | kConnected);
  w.end_object();
}

void write_member(json::Writer& w, const Member& m) {
  write_member(w, m.user_id, m.now);
}

}  // namespace

Room::Room(std::string id, const RoomRules& rules) : id_(std::move(id)), rules_(rules) {}

bool Room::has_member(std::string_view user_id) const {
  auto it = members_.find(user_id);
  return it != members_.end() && !it->second->leaving;
}

void Room::mark(Member& m) {
  if (m.dirty_listed) return;
  m.dirty_listed = true;
  dirty_.push_back(&m);
  if (m.is_new) return;  // goes out whole in `joined`: nothing to compare with
  m.published_index = static_cast<std::uint32_t>(published_used_++);
  if (published_.size() < published_used_) {
    published_.push_back(m.now);
  } else {
    published_[m.published_index] = m.now;
  }
}

void Room::reset_fresh(Member& m, const Identity& who, std::int64_t now_ms) {
  m.may_rename = who.may_rename;
  m.now = MemberState{};
  m.now.name = who.name;
  m.now.role = who.role;
  m.now.devices = 1;
  m.chosen = msg::UserStatus::kOnline;
  m.last_activity_ms = now_ms;
  m.grace_until_ms = 0;
  m.leaving = false;
  timer_at(now_ms + rules_.idle_after_ms);
}

Member& Room::attach(const Identity& who, std::int64_t now_ms) {
  auto it = members_.find(who.user_id);
  if (it == members_.end()) {
    auto m = std::make_unique<Member>();
    m->user_id = who.user_id;
    reset_fresh(*m, who, now_ms);
    if (auto b = left_buckets_.find(who.user_id); b != left_buckets_.end()) {
      m->chat_tokens = b->second.tokens;
      m->chat_refill_ms = b->second.refill_ms;
      left_buckets_.erase(b);
    }
    Member& ref = *m;
    members_.emplace(std::string_view(ref.user_id), std::move(m));
    ++present_;
    mark(ref);
    return ref;
  }
  Member& m = *it->second;
  mark(m);
  if (m.leaving) {
    // Back before its departure went out: the same member, starting afresh.
    reset_fresh(m, who, now_ms);
    ++present_;
  } else {
    ++m.now.devices;
    m.now.connected = true;
    m.grace_until_ms = 0;
  }
  return m;
}

void Room::detach(Member& m, bool client_closed, std::int64_t now_ms) {
  RC_ASSERT(m.now.devices > 0 && !m.leaving);
  mark(m);
  --m.now.devices;
  if (m.now.devices == 0) {
    if (client_closed || rules_.leave_grace_ms <= 0) {
      m.leaving = true;
      --present_;
    } else {
      m.now.connected = false;
      m.grace_until_ms = now_ms + rules_.leave_grace_ms;
      timer_at(m.grace_until_ms);
    }
  }
}

void Room::set_status(Member& m, msg::UserStatus s) {
  if (m.now.status == s) return;
  mark(m);
  m.now.status = s;
}

void Room::activity(Member& m, std::int64_t now_ms) {
  m.last_activity_ms = now_ms;
  set_status(m, m.chosen);
  if (m.chosen == msg::UserStatus::kOnline) timer_at(now_ms + rules_.idle_after_ms);
}

Status Room::apply(Member& m, const msg::Presence& p, std::int64_t now_ms, std::int64_t wall_ms) {
  using P = msg::Presence;
  if ((p.has & P::kHasName) && !m.may_rename) {
    return Status::error("name: this session's name comes from its token");
  }
  mark(m);
  MemberState& s = m.now;
  if (p.has & P::kHasX) s.x = p.x;
  if (p.has & P::kHasY) s.y = p.y;
  if (p.has & P::kHasEmoji) s.emoji.assign(p.emoji);
  if (p.has & P::kHasHand) {
    // Raising a raised hand keeps its place in the queue.
    if (p.hand && !s.hand) s.hand_at_ms = wall_ms > 0 ? wall_ms : 1;
    if (!p.hand) s.hand_at_ms = 0;
    s.hand = p.hand;
  }
  if (p.has & P::kHasStatusText) s.status_text.assign(p.status_text);
  if (p.has & P::kHasName) s.name.assign(p.name);
  if (p.has & P::kHasStatus) m.chosen = p.status;
  activity(m, now_ms);
  return Status::ok();
}

void Room::lower_hands() {
  for (auto& [id, m] : members_) {
    if (m->now.hand && !m->leaving) {
      mark(*m);
      m->now.hand = false;
      m->now.hand_at_ms = 0;
    }
  }
}

void Room::compact(std::int64_t now_ms) {
  // A clean room needs no published copies: hand their slots back, so a
  // quiet room costs nothing for the burst it once had.
  if (dirty_.empty()) std::vector<MemberState>().swap(published_);
  prune_left_buckets(left_buckets_, now_ms, rules_.chat_refill_ms);
}

void prune_left_buckets(LeftBuckets& buckets, std::int64_t now_ms, std::int64_t refill_ms) {
  std::erase_if(buckets, [&](const auto& kv) { return now_ms - kv.second.refill_ms >= refill_ms; });
}

std::int64_t Room::member_timer_ms(const Member& m) const {
  std::int64_t at = m.grace_until_ms != 0 ? m.grace_until_ms : INT64_MAX;
  if (m.chosen != msg::UserStatus::kOnline) return at;  // away/busy are the user's own
  if (m.now.status == msg::UserStatus::kOnline) {
    at = std::min(at, m.last_activity_ms + rules_.idle_after_ms);
  } else if (m.now.status == msg::UserStatus::kIdle) {
    at = std::min(at, m.last_activity_ms + rules_.away_after_ms);
  }
  return at;
}

bool Room::sweep(std::int64_t now_ms) {
  if (now_ms < next_timer_ms_) return false;
  bool freed = false;
  next_timer_ms_ = INT64_MAX;
  for (auto& [id, mp] : members_) {
    Member& m = *mp;
    if (m.leaving) continue;
    if (m.grace_until_ms != 0 && now_ms >= m.grace_until_ms) {
      mark(m);
      m.grace_until_ms = 0;
      m.leaving = true;
      --present_;
      freed = true;
      continue;
    }
    if (m.chosen == msg::UserStatus::kOnline) {
      std::int64_t quiet = now_ms - m.last_activity_ms;
      msg::UserStatus want = quiet >= rules_.away_after_ms   ? msg::UserStatus::kAway
                             : quiet >= rules_.idle_after_ms ? msg::UserStatus::kIdle
                                                             : msg::UserStatus::kOnline;
      set_status(m, want);
    }
    timer_at(member_timer_ms(m));
  }
  return freed;
}

bool Room::build_delta(std::string& out) {
  const std::size_t start = out.size();
  json::Writer w(out);
  w.begin_object().field("type", "delta").field("tick", tick_ + 1);
  bool any = false;
  bool open = false;
  for (Member* m : dirty_) {
    if (!m->is_new || m->leaving) continue;
    if (!open) w.key("joined").begin_array();
    open = any = true;
    write_member(w, *m);
  }
  if (open) w.end_array();
  open = false;
  for (Member* m : dirty_) {
    if (m->is_new || m->leaving) continue;
    std::uint16_t d = diff(m->now, published_[m->published_index]) | m->shown_unpublished;
    if (d == 0) continue;
    if (!open) w.key("updated").begin_array();
    open = any = true;
    w.begin_object().field("user_id", std::string_view(m->user_id));
    write_fields(w, m->now, d);
    w.end_object();
  }
  if (open) w.end_array();
  open = false;
  for (Member* m : dirty_) {
    if (!m->leaving || (m->is_new && !m->shown_new)) continue;
    if (!open) w.key("left").begin_array();
    open = any = true;
    w.value(std::string_view(m->user_id));
  }
  if (open) w.end_array();
  w.end_object();
  // What was written is now what every member knows.
  for (Member* m : dirty_) {
    m->dirty_listed = false;
    m->shown_unpublished = 0;
    m->shown_new = false;
    if (m->leaving) {
      if (m->chat_tokens >= 0) left_buckets_[m->user_id] = {m->chat_tokens, m->chat_refill_ms};
      members_.erase(members_.find(std::string_view(m->user_id)));
      continue;
    }
    m->is_new = false;
  }
  dirty_.clear();
  published_used_ = 0;
  if (!any) {
    out.resize(start);
    return false;
  }
  ++tick_;
  return true;
}

void Room::write_members(std::string& out, Member* self) {
  // The room as it is now. The next delta goes on from the last one, so
  // whatever this shows that no delta has told yet is marked: the next delta
  // carries those fields even where the tick undoes them, and names in
  // `left` a joiner shown here that leaves within the tick. Otherwise the
  // receiver would keep a value or a member the coalescing leaves out.
  json::Writer w(out);
  w.begin_array();
  for (const auto& [id, mp] : members_) {
    Member& m = *mp;
    if (m.leaving) continue;  // in the next delta's `left` if it was ever told
    if (m.is_new) {
      // In the next delta's `joined` anyway; the receiver's own member
      // leaving means the receiver is gone too.
      if (&m != self) m.shown_new = true;
    } else if (m.dirty_listed) {
      m.shown_unpublished |= diff(m.now, published_[m.published_index]);
    }
    write_member(w, m);
  }
  w.end_array();
}

void Room::build_sync(std::string& out, Member* self) {
  ++tick_;
  json::Writer w(out);
  w.begin_object().field("type", "sync").field("tick", tick_).key("members");
  std::string members;
  write_members(members, self);
  w.raw(members).end_object();
}

}  // namespace rc::rooms
