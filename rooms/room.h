#pragma once
// One room's membership and presence, and the coalescing of its changes into
// one delta per tick (PROTOCOL 3.1 and 3.3). Pure domain logic: no sockets,
// no clock of its own (times are passed in), so every rule is unit-tested.
//
// Owned and used by exactly one shard thread.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "protocol/messages.h"
#include "rooms/member.h"
#include "rooms/session.h"

namespace rc::rooms {

struct RoomRules {
  std::int64_t leave_grace_ms = 15000;
  std::int64_t idle_after_ms = 60000;
  std::int64_t away_after_ms = 180000;
  // How long an empty chat bucket takes to fill (burst / rate): a user who
  // leaves with a spent bucket finds it again if back sooner.
  std::int64_t chat_refill_ms = 2000;
};

// The chat rate limit is per user and room, so leaving and coming back must
// not refill it: the buckets of users who left, by user id, kept until they
// would be full again (RoomRules::chat_refill_ms).
struct ChatBucket {
  double tokens;
  std::int64_t refill_ms;  // monotonic
};
using LeftBuckets = std::unordered_map<std::string, ChatBucket>;
// Forgets the buckets that are full again by now_ms.
void prune_left_buckets(LeftBuckets& buckets, std::int64_t now_ms, std::int64_t refill_ms);

class Room {
 public:
  Room(std::string id, const RoomRules& rules);
  Room(const Room&) = delete;
  Room& operator=(const Room&) = delete;

  const std::string& id() const { return id_; }
  // Distinct users holding a place (reconnect grace included, leavers not).
  std::size_t member_count() const { return present_; }
  bool has_member(std::string_view user_id) const;
  std::uint64_t tick() const { return tick_; }

  // A session of `who` enters: the first one joins the user, a further one
  // adds a device, one within the reconnect grace restores the member.
  Member& attach(const Identity& who, std::int64_t now_ms);
  // A session of m ends. client_closed: the client sent the close frame first
  // (the member leaves at once when it was the last device); otherwise the
  // reconnect grace applies.
  void detach(Member& m, bool client_closed, std::int64_t now_ms);

  // Applies a validated presence update (PROTOCOL 3.2). The only rule left
  // to check here is who may set `name`; breaking it changes nothing.
  Status apply(Member& m, const msg::Presence& p, std::int64_t now_ms, std::int64_t wall_ms);
  // Every raised hand goes down.
  void lower_hands();
  // An accepted presence or chat message from m (restores a chosen status).
  void activity(Member& m, std::int64_t now_ms);
  // Reconnect-grace expiry and idle/away transitions due by now_ms. Returns
  // true when a member left (its place is free: the queue may move).
  bool sweep(std::int64_t now_ms);
  // No timer change (grace expiry, idle, away) falls due before this time
  // (INT64_MAX: none can): sweep() before it finds nothing to do. It may be
  // earlier than needed (activity only moves a member's timers later, and
  // that is learnt at the next sweep), never later. Only attach, detach,
  // activity and apply move it earlier: the caller looks at it after each
  // (App::list).
  std::int64_t next_timer_ms() const { return next_timer_ms_; }
  // Gives back the memory a clean room kept for coalescing, and forgets the
  // chat buckets of users who left that would be full again by now_ms.
  void compact(std::int64_t now_ms);
  // The chat buckets of users who left, for a room that is going away (its
  // next incarnation gets them back) and for the one that comes after it.
  LeftBuckets take_left_buckets() { return std::move(left_buckets_); }
  void give_left_buckets(LeftBuckets buckets) { left_buckets_ = std::move(buckets); }

  bool dirty() const { return !dirty_.empty(); }
  // Writes the delta of everything changed since the last one into out (a
  // whole JSON message) and makes it the published state. Returns false, and
  // writes nothing, when there is no net change. The tick advances only when
  // a delta is written.
  bool build_delta(std::string& out);
  // The whole member list ("members":[...]) for a welcome or a sync, as of
  // now. What it shows that no delta has told yet goes out in the next
  // delta even if the tick undoes it (a field back at its published value, a
  // joiner who leaves: `left`), so the receiver's list plus the deltas after
  // it always make the room. `self` is the receiving session's member (may
  // be null): its own joining needs no `left` after it.
  void write_members(std::string& out, Member* self);
  // A sync message for a session of `self`; moves the tick.
  void build_sync(std::string& out, Member* self);

 private:
  // Must come before m.now changes: the first mark of a tick keeps what the
  // last delta published of m.
  void mark(Member& m);
  void reset_fresh(Member& m, const Identity& who, std::int64_t now_ms);
  void set_status(Member& m, msg::UserStatus s);
  void timer_at(std::int64_t at_ms) { next_timer_ms_ = std::min(next_timer_ms_, at_ms); }
  // When m's next timer change falls due (INT64_MAX: none).
  std::int64_t member_timer_ms(const Member& m) const;

  std::string id_;
  RoomRules rules_;
  // Keyed by a view of the member's own user_id.
  std::unordered_map<std::string_view, std::unique_ptr<Member>> members_;
  std::vector<Member*> dirty_;
  // What the last delta told of the dirty members that are not new, each at
  // its member's published_index; slots are reused from tick to tick (their
  // strings keep their capacity), a quiet member holds none.
  std::vector<MemberState> published_;
  std::size_t published_used_ = 0;
  std::size_t present_ = 0;
  std::uint64_t tick_ = 0;
  std::int64_t next_timer_ms_ = INT64_MAX;
  LeftBuckets left_buckets_;
};

}  // namespace rc::rooms
