#pragma once
// Client frames built by the book (RFC 6455 5.2), written independently of
// the codec under test, for the WebSocket unit tests (ws_test and the wslay
// differential test).

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace rc::ws::test {

using Bytes = std::vector<std::uint8_t>;

// The masking key of the example in RFC 6455 5.7.
inline constexpr std::array<std::uint8_t, 4> kRfcKey = {0x37, 0xfa, 0x21, 0x3d};

struct FrameOptions {
  bool fin = true;
  std::uint8_t rsv = 0;  // the three RSV bits, RSV1 = 4
  bool masked = true;
  int length_bytes = -1;  // -1: shortest form; else 0, 2 or 8 extra length bytes
  std::array<std::uint8_t, 4> key = kRfcKey;
};

inline Bytes client_frame(std::uint8_t opcode, std::string_view payload, FrameOptions o = {}) {
  Bytes out;
  out.push_back(static_cast<std::uint8_t>((o.fin ? 0x80 : 0) | (o.rsv << 4) | opcode));
  const std::uint64_t n = payload.size();
  int length_bytes = o.length_bytes;
  if (length_bytes < 0) length_bytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const std::uint8_t mask_bit = o.masked ? 0x80 : 0;
  if (length_bytes == 0) out.push_back(static_cast<std::uint8_t>(mask_bit | n));
  if (length_bytes == 2) out.push_back(mask_bit | 126);
  if (length_bytes == 8) out.push_back(mask_bit | 127);
  for (int i = length_bytes - 1; i >= 0; --i)
    out.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  if (o.masked) out.insert(out.end(), o.key.begin(), o.key.end());
  for (std::size_t i = 0; i < payload.size(); ++i) {
    const auto b = static_cast<std::uint8_t>(payload[i]);
    out.push_back(o.masked ? static_cast<std::uint8_t>(b ^ o.key[i % 4]) : b);
  }
  return out;
}

inline Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// A close frame's payload: the code, big-endian, then the reason.
inline std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
  std::string p{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  return p + std::string(reason);
}

}  // namespace rc::ws::test
