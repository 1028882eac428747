#pragma once
// Typed client -> server messages (PROTOCOL.md section 3.2), as produced by
// json::Decoder (json_decode.h). Every value here has already been checked
// against the protocol's types and ranges; string fields are views that stay
// valid only until the decoder's next call (see Decoder::decode), so a caller
// that keeps one (a name, a chat text) copies it.

#include <cstdint>
#include <string_view>

#include "core/limits.h"

namespace rc::msg {

enum class Type : std::uint8_t { kPresence, kChat, kHistory, kSync, kPing, kLowerHands };

// A user's availability. Clients may set online, away or busy; idle is only
// ever set by the server (inactivity), so the decoder never produces it.
enum class UserStatus : std::uint8_t { kOnline, kAway, kBusy, kIdle };

// A partial presence update: only the fields whose bit is set in `has` were
// in the message.
struct Presence {
  std::uint8_t has = 0;  // bit per field, see kHasX...
  static constexpr std::uint8_t kHasX = 1, kHasY = 2, kHasEmoji = 4, kHasHand = 8, kHasStatus = 16,
                                kHasStatusText = 32, kHasName = 64;

  double x = 0;            // [0,1]; -0 arrives as 0
  double y = 0;            // [0,1]
  std::string_view emoji;  // <= limits::emoji_bytes_max bytes; "" clears
  bool hand = false;
  UserStatus status = UserStatus::kOnline;  // never kIdle
  std::string_view status_text;             // trimmed, <= limits::status_text_chars_max code points
  std::string_view name;  // trimmed, 1..limits::name_bytes_max bytes, no control characters
};

struct Chat {
  std::string_view text;       // trimmed, 1..DecodeLimits::chat_chars_max code points
  std::string_view client_id;  // <= limits::client_id_bytes_max bytes, echoed back
  bool has_client_id = false;
};

struct History {
  std::uint64_t before = 0;                             // 0 = newest; otherwise a positive seq
  std::uint32_t limit = limits::history_limit_default;  // 1..limits::history_limit_max
};

struct ClientMessage {
  Type type = Type::kPing;
  Presence presence;  // kPresence
  Chat chat;          // kChat
  History history;    // kHistory
  // Any message's string `client_id` of at most limits::client_id_bytes_max
  // bytes, if present; the server echoes it as `ref` in an error answer.
  std::string_view client_id;
};

}  // namespace rc::msg
