#pragma once
// A member of a room: one user, however many devices (PROTOCOL 3.3).

#include <cstdint>
#include <string>

#include "protocol/messages.h"
#include "rooms/session.h"

namespace rc::rooms {

// What clients see of a member. While a member is dirty, its room keeps a
// copy of what the last delta told everyone, which is how coalescing finds
// the net change; a quiet member holds only this one copy.
// (Fields are ordered by size: one is kept per member.)
struct MemberState {
  double x = 0;
  double y = 0;
  std::int64_t hand_at_ms = 0;  // wall-clock ms when the hand went up, 0 while down
  std::string emoji;
  std::string status_text;
  std::string name;
  std::uint32_t devices = 0;
  bool hand = false;
  msg::UserStatus status = msg::UserStatus::kOnline;
  bool connected = true;
  Role role = Role::kStudent;  // from the identity of the session that (re)joined
};

struct Member {
  std::string user_id;  // also the room's key for this member (a view of it)
  MemberState now;
  std::int64_t last_activity_ms = 0;  // monotonic
  std::int64_t grace_until_ms = 0;    // monotonic; 0 = not in reconnect grace
  // Chat token bucket (per user and room): --chat-rate per second, burst twice that.
  double chat_tokens = -1;            // < 0: not started (starts full)
  std::int64_t chat_refill_ms = 0;
  // While dirty and not new: where the room keeps what the last delta
  // published of this member.
  std::uint32_t published_index = 0;
  // Fields the next delta carries even if they end back at their published
  // value: a welcome or sync showed their unpublished values (Room::write_members).
  std::uint16_t shown_unpublished = 0;
  // The status the user chose; `now.status` may be idle/away for inactivity.
  msg::UserStatus chosen = msg::UserStatus::kOnline;
  bool may_rename = true;
  // Joined since the last delta: goes out whole in `joined`.
  bool is_new = true;
  // Left since the last delta: goes out in `left`, then is erased. A user who
  // comes back before that delta is the same member again.
  bool leaving = false;
  bool dirty_listed = false;
  // New, and shown to another user's session by a welcome or sync: if it
  // leaves before the next delta, that delta says so in `left`.
  bool shown_new = false;
};

std::string_view status_name(msg::UserStatus s);
std::string_view role_name(Role r);

}  // namespace rc::rooms
