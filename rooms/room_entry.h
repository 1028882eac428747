#pragma once
// A room as its shard holds it: the domain state (Room) plus the sessions
// that receive its deltas and the queue of sessions waiting for a place.

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "persist/chat_log.h"
#include "rooms/room.h"
#include "rooms/session.h"

namespace rc::rooms {

struct RoomEntry {
  RoomEntry(std::string id, const RoomRules& rules) : room(std::move(id), rules) {}
  Room room;
  std::vector<Session*> sessions;  // admitted sessions, fan-out targets
  std::deque<Session*> queue;      // FIFO of sessions waiting for a place
  bool queue_moved = false;        // positions changed since the last `queued` updates
  bool listed = false;             // on the App's list of rooms with work at tick end
  bool retiring = false;           // on the App's list of rooms that may be empty now
  // The shard tick interval of the last delta: a room quiet for a whole tick
  // sends its next change at once (leading edge), a busy one at the tick end.
  std::int64_t sent_interval = -2;
  // Where the App's timer set holds this room (INT64_MAX: not in it).
  std::int64_t timer_due = INT64_MAX;
  // What this room adds to the shard's members and queued gauges.
  std::size_t members_counted = 0;
  std::size_t queued_counted = 0;

  // ---- chat: the log is asked for the room's last seq and newest messages
  // when the room is created; sessions wait in `opening` until it answers.
  bool chat_ready = false;
  bool open_requested = false;
  std::vector<Session*> opening;
  std::uint64_t last_seq = 0;
  std::deque<persist::ChatMessage> recent;  // newest --history-on-join messages, ascending
  bool recent_complete = true;  // `recent` holds every retained message
};

}  // namespace rc::rooms
