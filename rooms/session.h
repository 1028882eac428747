#pragma once
// One connection as the rooms layer sees it: first an HTTP exchange, then
// (after the upgrade) a WebSocket session. Owned by the shard's App; lives
// exactly as long as the App keeps it in its session table.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/shard.h"
#include "protocol/ws.h"

namespace rc::rooms {

struct Member;
struct RoomEntry;

enum class Role : std::uint8_t { kStudent, kTeacher };

struct Identity {
  std::string user_id;
  std::string name;
  Role role = Role::kStudent;
  bool may_rename = true;  // anonymous, or a token without a name claim
};

// What travels with a connection to another shard: to the one that issued
// its ticket (redeem, identity still unknown), then to the one owning its room.
struct UpgradeHandoff {
  std::string room;
  Identity who;
  std::string accept_key;
  std::uint64_t since = 0;
  bool has_since = false;
  bool redeem = false;     // `ticket` must be redeemed first
  std::string ticket;
  std::string raw_query;   // redeem: query options are checked after the credentials
};

struct EarlyMessages {
  // Copies, each followed by limits::read_padding_bytes of zeros.
  std::vector<std::string> held;
  std::uint32_t dropped = 0;  // beyond limits::early_messages_max
};

struct Session {
  enum class Phase : std::uint8_t { kHttp, kOpen, kCloseSent };
  ConnId id = 0;
  Phase phase = Phase::kHttp;
  std::uint32_t index = 0;  // position in App::sessions_
  std::int64_t created_ms = 0;
  std::int64_t last_rx_ms = 0;
  std::int64_t last_ping_ms = 0;
  std::int64_t close_deadline_ms = 0;  // kCloseSent: give up waiting for the reply
  std::optional<ws::MessageReader> reader;
  Identity who;
  std::string session_id;
  // In a room: admitted (member set) or waiting in its queue.
  RoomEntry* entry = nullptr;
  Member* member = nullptr;
  std::uint32_t room_index = 0;      // position in entry->sessions while admitted
  std::uint32_t queue_pos_sent = 0;  // last `queued` position sent
  bool queued = false;
  bool welcomed = false;        // has its welcome: deltas and chat may follow
  bool opening = false;         // waiting for the room's chat state before its welcome
  bool awaiting_resume = false; // welcome waits for the log's answer to since=S
  bool has_since = false;
  bool head_request = false;  // kHttp: the request being answered is a HEAD (no body)
  bool answered = false;      // kHttp: one request answered, the connection kept alive
  std::uint64_t since = 0;
  bool needs_sync = false;      // fell behind: deltas skipped until it drains
  bool client_closed = false;   // the client sent the close frame first
  // Messages that came before the welcome while the room was being opened,
  // handled once welcomed or queued.
  std::unique_ptr<EarlyMessages> early;
};

}  // namespace rc::rooms
