#pragma once
// The WebSocket codec (RFC 6455), server side: client frames are decoded and
// unmasked in place where they landed in the receive buffer, messages are
// checked against PROTOCOL.md section 3, and server frames get their headers.
//
// Pure: no I/O, no clock, no global state. A MessageReader belongs to one
// session and is used by one thread at a time; the free functions may be
// called from any thread.
//
// Verdicts (PROTOCOL section 3, RFC 6455 section 7.4.1), each a close code:
//   1002 protocol error: RSV bits set (no extension is ever negotiated),
//        reserved opcode, unmasked client frame, control frame that is
//        fragmented or carries more than 125 bytes, payload length with the
//        top bit set or not in its shortest encoding, continuation frame with
//        no message in progress, new data frame while a message is in
//        progress, close payload of one byte or with a code not valid on
//        the wire.
//   1003 binary message (rollcall only speaks text).
//   1007 text or close reason that is not UTF-8.
//   1009 message over the maximum, known from a frame header before its
//        payload arrives.
// The behaviour is held to wslay's (the reference implementation) by
// tests/protocol/ws_wslay_test.cc and tests/fuzz/ws_wslay_fuzz.cc; the few
// deliberate differences are listed there.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/limits.h"
#include "protocol/utf8.h"

namespace rc::ws {

enum Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

namespace close_code {  // RFC 6455 7.4.1
inline constexpr std::uint16_t kNormal = 1000, kGoingAway = 1001, kProtocolError = 1002,
                               kUnsupportedData = 1003, kNoStatus = 1005, kAbnormal = 1006,
                               kInvalidPayload = 1007, kPolicy = 1008, kTooBig = 1009,
                               kInternal = 1011, kTryAgain = 1013;
}  // namespace close_code

// True for codes a peer may put in a close frame: 1000-1003, 1007-1014 and
// 3000-4999. 1004-1006 and 1015 are reserved for local use and never sent;
// 1016-2999 are unassigned; 5000 and above do not exist.
bool close_code_receivable(std::uint16_t code);

// ---- client -> server frames

// A client frame decoded in place. The payload is unmasked in place (the input
// bytes change) and points into the caller's buffer.
struct Frame {
  bool fin;
  std::uint8_t opcode;
  std::uint8_t* payload;
  std::size_t payload_bytes;
};

enum class DecodeStatus : std::uint8_t { kFrame, kIncomplete, kError };

struct Decoded {
  DecodeStatus status;
  std::size_t consumed = 0;      // kFrame: bytes of the whole frame (header + payload)
  std::size_t needed = 0;        // kIncomplete: total frame bytes needed if the header is
                                 // known, else 0
  std::uint16_t close_code = 0;  // kError: 1002 or 1009
  std::string_view reason;       // kError: short static text ("unmasked frame", ...)
  Frame frame{};                 // kFrame: the frame
};

// Decodes the client frame at the start of data[0..len).
//
// Errors are reported as soon as the bytes that show them are present, in
// this order: RSV bits, reserved opcode (3-7, 0xB-0xF), fragmented control
// frame, control payload over 125 bytes, unmasked frame (all from the first
// two bytes), then a 64-bit length with the top bit set or a length that is
// not in its shortest form (126 announcing < 126 bytes, 127 announcing
// < 65536), all 1002; then a data or continuation frame whose payload is over
// payload_bytes_max, 1009 (control frames are bounded by the 125 above
// instead). Rejecting non-minimal lengths is what wslay does (RFC 6455 5.2
// says "the minimal number of bytes MUST be used"), and the differential
// test holds us to it.
//
// The payload is unmasked only once the whole frame is present; an
// incomplete frame leaves the bytes untouched so the call can be repeated
// with more bytes. Never reads data[len] or beyond.
Decoded decode_frame(std::uint8_t* data, std::size_t len, std::size_t payload_bytes_max);

// XORs data[0..len) with the 4-byte masking key, starting at key byte 0.
void unmask(std::uint8_t* data, std::size_t len, const std::uint8_t key[4]);

// What MessageReader reports to. Every callback runs inside feed(); the views
// and pointers stay valid only until the callback returns.
template <typename S>
concept MessageSink = requires(S& sink, std::uint8_t* data, std::size_t bytes,
                               std::string_view view, std::uint16_t code) {
  // A whole, UTF-8-valid text message. data[bytes..bytes+padding) is
  // readable whenever the buffer given to feed() had `padding` readable bytes
  // after its end (the reassembly buffer always has them, zeroed). The sink
  // may modify data[0..bytes).
  sink.on_text(data, bytes);
  sink.on_ping(view);
  sink.on_pong(view);
  // A valid close frame; code is 1005 when its payload was empty. The reader
  // then stops: answering with a close frame is the caller's business.
  sink.on_close(code, view);
  // The session must be closed with `code`; the reason is short static text.
  // The reader then stops.
  sink.on_error(code, view);
};

// Per-session message state: reassembles fragmented messages and checks
// sequencing, sizes and UTF-8 (the verdicts at the top of this file).
//
// It holds a few words plus a reassembly buffer that exists only while a
// fragmented message is in progress: it grows (doubling) up to
// message_bytes_max + padding and is freed when the message completes or the
// session fails. Unfragmented messages are handed over in place, without
// copying or allocating.
//
// Binary messages are answered with on_error(1003) once their first frame is
// complete (a binary frame whose header already announces more than the
// maximum gets 1009 first, as wslay would). Control frames may come between
// the fragments of a message. Text fragments are checked as they arrive: a
// fragment that makes the message invalid UTF-8 fails the session at once.
class MessageReader {
 public:
  MessageReader(std::size_t message_bytes_max, std::size_t padding);
  MessageReader(MessageReader&&) = default;
  MessageReader& operator=(MessageReader&&) = default;

  // Consumes whole frames from data[0..len) and reports events to sink.
  // Returns the bytes consumed; the caller keeps the rest and calls again with
  // more bytes appended. After on_error or on_close it consumes nothing more
  // (the failing frame is not counted as consumed; the close frame is).
  // Frames are unmasked in place, so data must be writable.
  template <MessageSink Sink>
  std::size_t feed(std::uint8_t* data, std::size_t len, Sink& sink);

  bool failed() const { return phase_ == Phase::kFailed; }
  bool closed() const { return phase_ == Phase::kClosed; }

  // Bytes the caller must be able to hold contiguously to finish the current
  // frame (for sizing its input buffer): header + payload of the frame that
  // the last feed() stopped in, 0 if its header was not complete yet (at most
  // limits::ws_frame_header_bytes_max bytes are then needed to learn it).
  std::size_t pending_frame_bytes() const { return pending_frame_bytes_; }

  // Bytes allocated for reassembly right now (0 unless a fragmented message
  // is in progress).
  std::size_t assembly_bytes_allocated() const { return assembly_capacity_bytes_; }

  // Well-formed frames the last feed() consumed (data, continuation and
  // control frames alike; a frame that failed is not counted).
  std::uint32_t frames_last_feed() const { return frames_last_feed_; }

 private:
  enum class Phase : std::uint8_t { kOpen, kFailed, kClosed };
  enum class EventKind : std::uint8_t { kNeedMore, kNone, kText, kPing, kPong, kClose, kError };

  // The outcome of one frame. `consumed` counts the bytes to skip past it.
  struct Event {
    EventKind kind;
    std::size_t consumed = 0;
    std::uint8_t* data = nullptr;  // kText
    std::size_t bytes = 0;         // kText
    std::string_view view;         // kPing/kPong payload, kClose/kError reason
    std::uint16_t code = 0;        // kClose, kError
  };

  Event next(std::uint8_t* data, std::size_t len);
  Event on_frame(const Frame& frame, std::size_t consumed);
  Event on_data_frame(const Frame& frame, std::size_t consumed);
  Event on_close_frame(const Frame& frame, std::size_t consumed);
  Event fail(std::uint16_t code, std::string_view reason);
  void append(const std::uint8_t* data, std::size_t bytes);
  void reserve(std::size_t payload_bytes);
  void release_assembly();

  std::size_t message_bytes_max_;
  std::size_t padding_;
  std::size_t pending_frame_bytes_ = 0;
  std::size_t assembled_bytes_ = 0;
  std::size_t assembly_capacity_bytes_ = 0;  // allocated, padding included
  std::unique_ptr<std::uint8_t[]> assembly_;
  utf8::Validator validator_;
  bool assembling_ = false;        // a fragmented text message is in progress
  bool text_in_assembly_ = false;  // the last kText event points into assembly_
  Phase phase_ = Phase::kOpen;
  std::uint32_t frames_last_feed_ = 0;
};

template <MessageSink Sink>
std::size_t MessageReader::feed(std::uint8_t* data, std::size_t len, Sink& sink) {
  std::size_t pos = 0;
  frames_last_feed_ = 0;
  while (phase_ == Phase::kOpen) {
    const Event e = next(data + pos, len - pos);
    pos += e.consumed;
    if (e.kind != EventKind::kNeedMore && e.kind != EventKind::kError) ++frames_last_feed_;
    switch (e.kind) {
      case EventKind::kNeedMore:
        return pos;
      case EventKind::kNone:
        break;
      case EventKind::kText:
        sink.on_text(e.data, e.bytes);
        if (text_in_assembly_) release_assembly();
        break;
      case EventKind::kPing:
        sink.on_ping(e.view);
        break;
      case EventKind::kPong:
        sink.on_pong(e.view);
        break;
      case EventKind::kClose:
        sink.on_close(e.code, e.view);
        break;
      case EventKind::kError:
        sink.on_error(e.code, e.view);
        break;
    }
  }
  return pos;
}

// ---- server -> client frames (never masked, always FIN)

inline constexpr std::size_t kServerHeaderBytesMax = 10;
// A close frame: 2 header bytes, 2 code bytes, up to 123 reason bytes.
inline constexpr std::size_t kCloseFrameBytesMax = 2 + limits::ws_control_payload_bytes_max;

// Header bytes for a server frame with this payload: 2, 4 or 10.
std::size_t server_header_bytes(std::size_t payload_bytes);

// Writes the header of a FIN frame with this opcode and payload length into
// out, which has room for server_header_bytes(payload_bytes) bytes; returns
// the bytes written. A control opcode with more than 125 bytes is a
// programmer error (RC_ASSERT).
std::size_t write_server_header(std::uint8_t* out, std::uint8_t opcode, std::size_t payload_bytes);

// Writes a whole close frame into out[0..kCloseFrameBytesMax): the code and
// the reason, cut to 123 bytes on a UTF-8 boundary. code == kNoStatus writes
// a close frame without payload (the answer to a close that had none); any
// other code must be valid on the wire (RC_ASSERT). Returns the bytes written.
std::size_t write_close_frame(std::uint8_t* out, std::uint16_t code, std::string_view reason);

// The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key:
// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28 characters.
// Not on the hot path (once per upgrade); it allocates the result.
std::string accept_key(std::string_view client_key);

}  // namespace rc::ws
