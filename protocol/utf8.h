#pragma once
// UTF-8 checks used by the WebSocket codec and the message validators
// (PROTOCOL.md section 3: text frames must be UTF-8; names carry no control
// characters; "characters" are code points; trimming rules).
//
// Everything here is pure: no allocation, no state outside the arguments
// (Validator keeps one word). Any thread may call any function.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rc::utf8 {

// True if the bytes are well-formed UTF-8 (RFC 3629): no overlong encodings,
// no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated
// sequence at the end. Runs of ASCII are skipped 8 bytes at a time; the rest
// goes through a byte-class DFA.
bool valid(std::string_view s);

// Number of code points in s. s must be valid UTF-8 (otherwise the result is
// the number of bytes that are not continuation bytes, which is meaningless).
std::size_t count_code_points(std::string_view s);

// True if s contains a C0 control (< 0x20), DEL (0x7f) or a C1 control
// (U+0080..U+009F, encoded C2 80..C2 9F). Meant for valid UTF-8; on other
// input it still inspects every byte and never reads out of bounds.
bool has_control(std::string_view s);

// s without leading and trailing ' ', '\t', '\n', '\v', '\f' and '\r'
// (PROTOCOL section 3). Returns a view into s.
std::string_view trim(std::string_view s);

// Incremental validator for a message that arrives in pieces (fragmented
// WebSocket text). A code point may be split between pieces.
//   feed(piece): returns false once the bytes seen so far can no longer be the
//                start of valid UTF-8 (fail fast); it then stays false.
//   finish():    true if everything fed is valid and no sequence is left open.
// reset() makes it ready for the next message.
class Validator {
 public:
  bool feed(std::string_view piece);
  bool finish() const;
  void reset() { state_ = 0; }

 private:
  std::uint32_t state_ = 0;  // DFA state; 0 = between code points
};

}  // namespace rc::utf8
