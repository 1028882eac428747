#pragma once
// The client side of RFC 6455 that the load tools need, and nothing more: the
// upgrade request, the check of the server's 101 answer, masked client frames
// out and unmasked server frames in.
//
// Pure: no I/O, no clock, no global state; any thread may call any function.
// Header-only because the root CMakeLists builds each tools/*.cc as its own
// executable and compiles nothing under tools/load/.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "protocol/ws.h"

namespace rc::load {

// ---- the upgrade

// Standard base64 (RFC 4648, with '=' padding) of bytes, appended to out.
inline void base64_append(const std::uint8_t* bytes, std::size_t n, std::string& out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v =
        (std::uint32_t{bytes[i]} << 16) | (std::uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (n - i == 1) {
    const std::uint32_t v = std::uint32_t{bytes[i]} << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (n - i == 2) {
    const std::uint32_t v = (std::uint32_t{bytes[i]} << 16) | (std::uint32_t{bytes[i + 1]} << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
}

// A Sec-WebSocket-Key: base64 of the 16 bytes of (a, b), 24 characters.
inline std::string make_client_key(std::uint64_t a, std::uint64_t b) {
  std::uint8_t raw[16];
  std::memcpy(raw, &a, 8);
  std::memcpy(raw + 8, &b, 8);
  std::string key;
  base64_append(raw, sizeof raw, key);
  return key;
}

// The whole upgrade request for target ("/ws/rooms/r?user_id=u"), ready to send.
inline std::string upgrade_request(std::string_view host_port, std::string_view target,
                                   std::string_view key) {
  std::string r;
  r.reserve(160 + target.size());
  r.append("GET ").append(target).append(" HTTP/1.1\r\nHost: ").append(host_port);
  r.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ").append(key);
  r.append("\r\nSec-WebSocket-Version: 13\r\n\r\n");
  return r;
}

enum class HandshakeStatus : std::uint8_t { kIncomplete, kOk, kError };

struct Handshake {
  HandshakeStatus status = HandshakeStatus::kIncomplete;
  std::size_t head_bytes = 0;  // kOk: bytes of the answer's head; frames may follow
  int http_status = 0;         // the status code, when the status line was complete
};

namespace detail {
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace detail

// Checks the server's answer to the upgrade: kIncomplete until the head
// (ending in CRLF CRLF, at most 8 KiB) is there; kOk for "HTTP/1.1 101" with
// a Sec-WebSocket-Accept header equal to expected_accept; kError otherwise
// (http_status tells a refusal such as 400 or 503 from a malformed answer).
inline Handshake check_upgrade_answer(std::string_view bytes, std::string_view expected_accept) {
  constexpr std::size_t kHeadBytesMax = 8192;
  Handshake h;
  const std::size_t end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (bytes.size() > kHeadBytesMax) h.status = HandshakeStatus::kError;
    return h;
  }
  h.head_bytes = end + 4;
  h.status = HandshakeStatus::kError;
  std::string_view head = bytes.substr(0, end + 2);
  const std::size_t eol = head.find("\r\n");
  const std::string_view status_line = head.substr(0, eol);
  if (status_line.size() < 12 || status_line.substr(0, 9) != "HTTP/1.1 ") return h;
  const std::string_view code = status_line.substr(9, 3);
  for (char c : code) {
    if (c < '0' || c > '9') return h;
  }
  h.http_status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  if (h.http_status != 101) return h;
  head.remove_prefix(eol + 2);
  while (!head.empty()) {
    const std::size_t line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    head.remove_prefix(line_end + 2);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    if (detail::iequals(line.substr(0, colon), "sec-websocket-accept") &&
        detail::trim(line.substr(colon + 1)) == expected_accept) {
      h.status = HandshakeStatus::kOk;
      return h;
    }
  }
  return h;
}

// ---- frames

// The opcodes are the server codec's (RFC 6455 5.2).
using ws::Opcode;
using enum ws::Opcode;

// Appends one FIN client frame: header, masking key, masked payload.
// Control frames must carry at most 125 bytes (the caller's duty).
inline void append_masked_frame(std::string& out, std::uint8_t opcode, std::string_view payload,
                                std::uint32_t mask_key) {
  const std::size_t n = payload.size();
  out += static_cast<char>(0x80 | opcode);
  if (n < 126) {
    out += static_cast<char>(0x80 | n);
  } else if (n <= 0xFFFF) {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xFF);
  } else {
    out += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xFF);
  }
  std::uint8_t key[4];
  std::memcpy(key, &mask_key, 4);
  out.append(reinterpret_cast<const char*>(key), 4);
  const std::size_t start = out.size();
  out.append(payload);
  char* p = out.data() + start;
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<char>(p[i] ^ key[i & 3]);
}

// A close frame's payload: the code, big-endian, then the reason.
inline std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
  std::string p;
  p += static_cast<char>(code >> 8);
  p += static_cast<char>(code & 0xFF);
  p.append(reason.substr(0, 123));
  return p;
}

enum class FrameStatus : std::uint8_t { kFrame, kIncomplete, kError };

// A server frame found at the start of a buffer. The payload points into it.
struct ServerFrame {
  FrameStatus status = FrameStatus::kIncomplete;
  bool fin = false;
  std::uint8_t opcode = 0;
  const std::uint8_t* payload = nullptr;
  std::size_t payload_bytes = 0;
  std::size_t frame_bytes = 0;  // kFrame: header + payload
};

// Decodes the server frame at the start of data[0..len). kError for what a
// client must refuse: a masked server frame, RSV bits, a reserved opcode, a
// control frame that is fragmented or over 125 bytes, a length with the top
// bit set, or a payload over payload_bytes_max.
inline ServerFrame parse_server_frame(const std::uint8_t* data, std::size_t len,
                                      std::size_t payload_bytes_max) {
  ServerFrame f;
  if (len < 2) return f;
  const std::uint8_t b0 = data[0], b1 = data[1];
  f.fin = (b0 & 0x80) != 0;
  f.opcode = b0 & 0x0F;
  const bool control = (f.opcode & 0x08) != 0;
  const bool known = f.opcode <= kBinary || (f.opcode >= kClose && f.opcode <= kPong);
  if ((b0 & 0x70) != 0 || !known || (b1 & 0x80) != 0) {
    f.status = FrameStatus::kError;
    return f;
  }
  std::size_t header = 2;
  std::uint64_t n = b1 & 0x7F;
  if (n == 126) {
    if (len < 4) return f;
    n = (std::uint64_t{data[2]} << 8) | data[3];
    header = 4;
  } else if (n == 127) {
    if (len < 10) return f;
    n = 0;
    for (int i = 0; i < 8; ++i) n = (n << 8) | data[2 + i];
    header = 10;
  }
  if ((control && (!f.fin || n > 125)) || (n >> 63) != 0 || n > payload_bytes_max) {
    f.status = FrameStatus::kError;
    return f;
  }
  if (len - header < n) return f;
  f.status = FrameStatus::kFrame;
  f.payload = data + header;
  f.payload_bytes = static_cast<std::size_t>(n);
  f.frame_bytes = header + f.payload_bytes;
  return f;
}

}  // namespace rc::load
