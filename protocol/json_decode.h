#pragma once
// Decoding of one client message (PROTOCOL.md section 3 and 3.2) from the
// bytes of a WebSocket text message into a msg::ClientMessage.
//
// The decoder is the only place in rollcall that sees simdjson (On-Demand);
// nothing of it leaks through this header.
//
// Rules enforced (every one, when broken, makes decode() return false):
//   - the text is one JSON object and nothing else follows it (whitespace aside);
//   - `type` is present, a string, and one of presence, chat, history, sync,
//     ping, lower_hands;
//   - each field the message type defines has the type and range of PROTOCOL
//     3.2 (x, y: finite numbers in [0,1]; emoji: string <= 32 bytes; hand: bool;
//     status: online|away|busy; status_text: <= 100 code points after trimming;
//     name: 1-64 bytes after trimming, no control characters; chat text: 1 to
//     chat_chars_max code points after trimming, and required; chat client_id:
//     string <= 64 bytes; history before: integer >= 1 (fits u64); history
//     limit: integer 1-200). `null` for such a field is a wrong type;
//   - a field the message type defines may appear only once: a duplicate is
//     rejected rather than resolved (last-wins and first-wins parsers disagree,
//     and the server must not see a message differently from a proxy or a log);
//   - fields the message type does not define are ignored, whatever their
//     value, but must still be well-formed JSON nested at most
//     unknown_value_depth_max deep. A `client_id` on a message other than chat
//     is such a field: it is only kept (for error refs) when it is a string of
//     at most 64 bytes;
//   - keys are compared after unescaping ("t\u0079pe" is `type`).
//
// Threading: a Decoder belongs to one thread (one per shard). decode() does
// not allocate unless it fails (the error text).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/limits.h"
#include "protocol/messages.h"

namespace rc::json {

// How deep an ignored (unknown) field's value may nest arrays and objects.
// Validating it is recursive, so the bound also bounds the stack.
inline constexpr std::size_t unknown_value_depth_max = 64;

struct DecodeLimits {
  std::size_t chat_chars_max = limits::chat_chars_default;  // --max-chat-chars
};

struct DecodeError {
  std::string message;  // which field and why, e.g. "x: must be a number in [0,1]"
  std::string ref;      // the message's client_id if one could be read, else ""
};

class Decoder {
 public:
  // Allocates, once, a parser able to hold a message of message_bytes_max
  // bytes (limits::message_bytes_min..limits::message_bytes_max).
  explicit Decoder(std::size_t message_bytes_max);
  ~Decoder();
  Decoder(Decoder&&) noexcept;  // a moved-from Decoder may only be destroyed or assigned to
  Decoder& operator=(Decoder&&) noexcept;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Decodes one client message from data[0..len). data[len..len+padding())
  // must be readable: the receive buffers keep that much room after every
  // payload. Its bytes never decide whether a message is accepted or what it
  // decodes to; on some malformed input they may change which error is named.
  //
  // On success returns true and fills `out` (every field reset first). The
  // string views in `out` point into `data` or into this decoder's buffers and
  // stay valid until the next decode() call on this decoder (and while `data`
  // lives).
  // On failure returns false, `err.message` says which rule was broken and
  // `err.ref` holds the client_id when one could still be read; `out` is then
  // unspecified. A message longer than the size given to the constructor
  // fails too (the framing layer normally rejects it first).
  bool decode(const std::uint8_t* data, std::size_t len, const DecodeLimits& lim,
              msg::ClientMessage& out, DecodeError& err);

  // Bytes that must be readable after every message (SIMDJSON_PADDING;
  // json_decode.cc checks that the two agree).
  static constexpr std::size_t padding() { return 64; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rc::json
