#include "protocol/ws.h"

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>

#include <algorithm>
#include <cstring>

#include "core/assert.h"

namespace rc::ws {
namespace {

constexpr std::uint8_t kFinBit = 0x80;
constexpr std::uint8_t kRsvBits = 0x70;
constexpr std::uint8_t kOpcodeBits = 0x0F;
constexpr std::uint8_t kMaskBit = 0x80;
constexpr std::uint8_t kLengthBits = 0x7F;
constexpr std::uint8_t kLength16 = 126;  // a 16-bit length follows
constexpr std::uint8_t kLength64 = 127;  // a 64-bit length follows
constexpr std::size_t kMaskKeyBytes = 4;
constexpr std::size_t kCloseCodeBytes = 2;

static_assert(limits::ws_frame_header_bytes_max == 2 + 8 + kMaskKeyBytes);
static_assert(limits::ws_close_reason_bytes_max + kCloseCodeBytes ==
              limits::ws_control_payload_bytes_max);

bool is_control(std::uint8_t opcode) {
  return (opcode & 0x08) != 0;
}

bool is_known_opcode(std::uint8_t opcode) {
  return opcode == kContinuation || opcode == kText || opcode == kBinary || opcode == kClose ||
         opcode == kPing || opcode == kPong;
}

Decoded error(std::uint16_t code, std::string_view reason) {
  return Decoded{.status = DecodeStatus::kError, .close_code = code, .reason = reason};
}

Decoded incomplete(std::size_t needed) {
  return Decoded{.status = DecodeStatus::kIncomplete, .needed = needed};
}

std::uint64_t load_big_endian(const std::uint8_t* p, std::size_t bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// Checks what the first two header bytes alone can tell. Returns an empty
// reason when they are acceptable.
std::string_view first_bytes_error(std::uint8_t b0, std::uint8_t b1) {
  const std::uint8_t opcode = b0 & kOpcodeBits;
  if ((b0 & kRsvBits) != 0) return "reserved bits set";
  if (!is_known_opcode(opcode)) return "reserved opcode";
  if (is_control(opcode)) {
    if ((b0 & kFinBit) == 0) return "fragmented control frame";
    if ((b1 & kLengthBits) > limits::ws_control_payload_bytes_max) return "control frame too long";
  }
  if ((b1 & kMaskBit) == 0) return "unmasked frame";
  return {};
}

}  // namespace

bool close_code_receivable(std::uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  if (code < 1000 || code > 1014) return false;
  return code != 1004 && code != close_code::kNoStatus && code != close_code::kAbnormal;
}

void unmask(std::uint8_t* data, std::size_t len, const std::uint8_t key[4]) {
  // The key repeats every 4 bytes, so a word holding it twice masks 8 bytes
  // at a time from offset 0; memcpy keeps the loads and stores legal on
  // unaligned payloads and compiles to plain moves (and vectorises).
  std::uint8_t key8[8];
  std::memcpy(key8, key, kMaskKeyBytes);
  std::memcpy(key8 + kMaskKeyBytes, key, kMaskKeyBytes);
  std::uint64_t k;
  std::memcpy(&k, key8, sizeof k);
  std::size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, data + i, sizeof w);
    w ^= k;
    std::memcpy(data + i, &w, sizeof w);
  }
  for (; i < len; ++i) data[i] ^= key[i % kMaskKeyBytes];
}

Decoded decode_frame(std::uint8_t* data, std::size_t len, std::size_t payload_bytes_max) {
  if (len < 2) return incomplete(0);
  const std::uint8_t b0 = data[0];
  const std::uint8_t b1 = data[1];
  if (std::string_view why = first_bytes_error(b0, b1); !why.empty()) {
    return error(close_code::kProtocolError, why);
  }
  const std::uint8_t opcode = b0 & kOpcodeBits;
  const std::uint8_t length7 = b1 & kLengthBits;
  std::size_t length_bytes = 0;
  if (length7 == kLength16) length_bytes = 2;
  if (length7 == kLength64) length_bytes = 8;
  const std::size_t header_bytes = 2 + length_bytes + kMaskKeyBytes;
  if (len < 2 + length_bytes) return incomplete(0);

  std::uint64_t payload_bytes = length7;
  if (length_bytes != 0) {
    payload_bytes = load_big_endian(data + 2, length_bytes);
    if (payload_bytes >> 63) return error(close_code::kProtocolError, "length top bit set");
    const std::uint64_t shortest = length_bytes == 2 ? kLength16 : 0x10000;
    if (payload_bytes < shortest) return error(close_code::kProtocolError, "non-minimal length");
  }
  if (!is_control(opcode) && payload_bytes > payload_bytes_max) {
    return error(close_code::kTooBig, "message too big");
  }
  // Control payloads are <= 125 and data payloads <= payload_bytes_max, so
  // the sum below cannot overflow for any sane maximum; the check keeps it
  // honest for an absurd one.
  if (payload_bytes > SIZE_MAX - header_bytes) return error(close_code::kTooBig, "message too big");
  const std::size_t frame_bytes = header_bytes + static_cast<std::size_t>(payload_bytes);
  if (len < frame_bytes) return incomplete(frame_bytes);

  std::uint8_t* payload = data + header_bytes;
  unmask(payload, static_cast<std::size_t>(payload_bytes), data + header_bytes - kMaskKeyBytes);
  Decoded d{.status = DecodeStatus::kFrame, .consumed = frame_bytes};
  d.frame = Frame{.fin = (b0 & kFinBit) != 0,
                  .opcode = opcode,
                  .payload = payload,
                  .payload_bytes = static_cast<std::size_t>(payload_bytes)};
  return d;
}

// ---- MessageReader

MessageReader::MessageReader(std::size_t message_bytes_max, std::size_t padding)
    : message_bytes_max_(message_bytes_max), padding_(padding) {}

// One step: looks at the frame at data[0..len) and says what it means. The
// sequencing checks come before decode_frame so that a misplaced frame is a
// protocol error even when its header also announces too many bytes (wslay
// judges in that order too).
MessageReader::Event MessageReader::next(std::uint8_t* data, std::size_t len) {
  text_in_assembly_ = false;
  if (len == 0) {
    pending_frame_bytes_ = 0;
    return Event{.kind = EventKind::kNeedMore};
  }
  const std::uint8_t opcode = data[0] & kOpcodeBits;
  if (opcode == kContinuation && !assembling_) {
    return fail(close_code::kProtocolError, "continuation frame without a message");
  }
  if ((opcode == kText || opcode == kBinary) && assembling_) {
    return fail(close_code::kProtocolError, "new message inside a fragmented message");
  }
  const Decoded d = decode_frame(data, len, message_bytes_max_ - assembled_bytes_);
  switch (d.status) {
    case DecodeStatus::kIncomplete:
      pending_frame_bytes_ = d.needed;
      return Event{.kind = EventKind::kNeedMore};
    case DecodeStatus::kError:
      return fail(d.close_code, d.reason);
    case DecodeStatus::kFrame:
      break;
  }
  pending_frame_bytes_ = 0;
  return on_frame(d.frame, d.consumed);
}

MessageReader::Event MessageReader::on_frame(const Frame& frame, std::size_t consumed) {
  const std::string_view payload(reinterpret_cast<const char*>(frame.payload), frame.payload_bytes);
  switch (frame.opcode) {
    case kPing:
      return Event{.kind = EventKind::kPing, .consumed = consumed, .view = payload};
    case kPong:
      return Event{.kind = EventKind::kPong, .consumed = consumed, .view = payload};
    case kClose:
      return on_close_frame(frame, consumed);
    case kBinary:
      return fail(close_code::kUnsupportedData, "binary messages are not supported");
    default:
      return on_data_frame(frame, consumed);
  }
}

// Text and continuation frames. An unfragmented message is checked and
// handed over where it lies; fragments are checked as they come (so a broken
// message fails at its first bad fragment) and copied into the reassembly
// buffer.
MessageReader::Event MessageReader::on_data_frame(const Frame& frame, std::size_t consumed) {
  const std::string_view payload(reinterpret_cast<const char*>(frame.payload), frame.payload_bytes);
  if (frame.opcode == kText && frame.fin) {
    if (!utf8::valid(payload)) return fail(close_code::kInvalidPayload, "text is not UTF-8");
    return Event{.kind = EventKind::kText,
                 .consumed = consumed,
                 .data = frame.payload,
                 .bytes = frame.payload_bytes};
  }
  if (frame.opcode == kText) {
    validator_.reset();
    assembling_ = true;
  }
  if (!validator_.feed(payload)) return fail(close_code::kInvalidPayload, "text is not UTF-8");
  append(frame.payload, frame.payload_bytes);
  if (!frame.fin) return Event{.kind = EventKind::kNone, .consumed = consumed};

  if (!validator_.finish()) return fail(close_code::kInvalidPayload, "text is not UTF-8");
  assembling_ = false;
  text_in_assembly_ = true;
  std::memset(assembly_.get() + assembled_bytes_, 0, padding_);
  return Event{.kind = EventKind::kText,
               .consumed = consumed,
               .data = assembly_.get(),
               .bytes = assembled_bytes_};
}

MessageReader::Event MessageReader::on_close_frame(const Frame& frame, std::size_t consumed) {
  const std::size_t n = frame.payload_bytes;
  std::uint16_t code = close_code::kNoStatus;
  std::string_view reason;
  if (n == 1) return fail(close_code::kProtocolError, "close payload of one byte");
  if (n >= kCloseCodeBytes) {
    // The reason is checked before the code: wslay does so (it validates
    // UTF-8 while the payload streams in), and a frame wrong in both ways
    // then gets the same verdict from both.
    reason = std::string_view(reinterpret_cast<const char*>(frame.payload) + kCloseCodeBytes,
                              n - kCloseCodeBytes);
    if (!utf8::valid(reason)) return fail(close_code::kInvalidPayload, "close reason is not UTF-8");
    code = static_cast<std::uint16_t>(load_big_endian(frame.payload, kCloseCodeBytes));
    if (!close_code_receivable(code)) return fail(close_code::kProtocolError, "invalid close code");
  }
  phase_ = Phase::kClosed;
  release_assembly();
  return Event{.kind = EventKind::kClose, .consumed = consumed, .view = reason, .code = code};
}

MessageReader::Event MessageReader::fail(std::uint16_t code, std::string_view reason) {
  phase_ = Phase::kFailed;
  pending_frame_bytes_ = 0;
  release_assembly();
  return Event{.kind = EventKind::kError, .view = reason, .code = code};
}

void MessageReader::append(const std::uint8_t* data, std::size_t bytes) {
  reserve(assembled_bytes_ + bytes);
  if (bytes != 0) std::memcpy(assembly_.get() + assembled_bytes_, data, bytes);
  assembled_bytes_ += bytes;
}

// Grows the reassembly buffer to hold payload_bytes plus the padding. It
// doubles so that a message in many small fragments costs few copies, and
// never beyond the message maximum (decode_frame already refused anything
// larger).
void MessageReader::reserve(std::size_t payload_bytes) {
  RC_ASSERT(payload_bytes <= message_bytes_max_);
  if (assembly_ && payload_bytes + padding_ <= assembly_capacity_bytes_) return;
  const std::size_t old_payload = assembly_ ? assembly_capacity_bytes_ - padding_ : 0;
  const std::size_t grown = std::min(std::max(payload_bytes, 2 * old_payload), message_bytes_max_);
  auto bigger = std::make_unique_for_overwrite<std::uint8_t[]>(grown + padding_);
  if (assembled_bytes_ != 0) std::memcpy(bigger.get(), assembly_.get(), assembled_bytes_);
  assembly_ = std::move(bigger);
  assembly_capacity_bytes_ = grown + padding_;
}

void MessageReader::release_assembly() {
  assembly_.reset();
  assembly_capacity_bytes_ = 0;
  assembled_bytes_ = 0;
  assembling_ = false;
  text_in_assembly_ = false;
}

// ---- server frames

std::size_t server_header_bytes(std::size_t payload_bytes) {
  if (payload_bytes < kLength16) return 2;
  if (payload_bytes <= 0xFFFF) return 4;
  return kServerHeaderBytesMax;
}

std::size_t write_server_header(std::uint8_t* out, std::uint8_t opcode, std::size_t payload_bytes) {
  RC_ASSERT(is_known_opcode(opcode) && opcode != kContinuation);
  RC_ASSERT(!is_control(opcode) || payload_bytes <= limits::ws_control_payload_bytes_max);
  out[0] = static_cast<std::uint8_t>(kFinBit | opcode);
  const std::size_t header_bytes = server_header_bytes(payload_bytes);
  if (header_bytes == 2) {
    out[1] = static_cast<std::uint8_t>(payload_bytes);
    return header_bytes;
  }
  out[1] = header_bytes == 4 ? kLength16 : kLength64;
  std::uint64_t v = payload_bytes;
  for (std::size_t i = header_bytes - 1; i >= 2; --i) {
    out[i] = static_cast<std::uint8_t>(v);
    v >>= 8;
  }
  return header_bytes;
}

std::size_t write_close_frame(std::uint8_t* out, std::uint16_t code, std::string_view reason) {
  if (code == close_code::kNoStatus) return write_server_header(out, kClose, 0);
  RC_ASSERT(close_code_receivable(code));
  // Cut on a code point boundary: back off while the first byte left out is
  // a continuation byte (at most 3 steps for UTF-8).
  std::size_t reason_bytes = std::min(reason.size(), limits::ws_close_reason_bytes_max);
  for (int step = 0; step < 3 && reason_bytes < reason.size() && reason_bytes > 0 &&
                     (static_cast<std::uint8_t>(reason[reason_bytes]) & 0xC0) == 0x80;
       ++step) {
    --reason_bytes;
  }
  const std::size_t header_bytes = write_server_header(out, kClose, kCloseCodeBytes + reason_bytes);
  out[header_bytes] = static_cast<std::uint8_t>(code >> 8);
  out[header_bytes + 1] = static_cast<std::uint8_t>(code);
  if (reason_bytes > 0) std::memcpy(out + header_bytes + kCloseCodeBytes, reason.data(), reason_bytes);
  return header_bytes + kCloseCodeBytes + reason_bytes;
}

std::string accept_key(std::string_view client_key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input;
  input.reserve(client_key.size() + kGuid.size());
  input.append(client_key).append(kGuid);
  unsigned char digest[20];
  const int sha_rc =
      mbedtls_sha1_ret(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  RC_ASSERT(sha_rc == 0);
  unsigned char encoded[29];  // 4 * ceil(20 / 3) = 28 characters + NUL
  std::size_t encoded_bytes = 0;
  const int b64_rc =
      mbedtls_base64_encode(encoded, sizeof encoded, &encoded_bytes, digest, sizeof digest);
  RC_ASSERT(b64_rc == 0);
  return std::string(reinterpret_cast<const char*>(encoded), encoded_bytes);
}

}  // namespace rc::ws
