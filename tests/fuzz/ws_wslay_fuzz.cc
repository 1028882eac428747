// Differential fuzz target: the same client bytes go to rc::ws::MessageReader
// and to a wslay server context (the reference, DESIGN.md), and their
// verdicts must agree: the complete messages in order (opcode + payload) and
// whether and with which close code the session ends.
//
// Input: byte 0 picks the message maximum (125 + 4 * byte, so control frames
// always fit, as wslay also counts them against the maximum); the rest is
// the client's byte stream.
//
// tests/protocol/ws_wslay_test.cc includes this file with
// RC_WS_WSLAY_HARNESS_ONLY defined to reuse the harness without the entry
// point.
//
// Where the two deliberately differ, the comparison maps or skips (see
// compare()):
//  1. Binary messages. wslay accepts them; rollcall closes with 1003
//     (PROTOCOL section 3). When we fail with 1003, wslay must have started a
//     binary frame exactly where we stopped and delivered the same messages
//     before it; what wslay does after that is not compared.
//  2. Close codes 1012-1014 (registered with IANA after RFC 6455: service
//     restart, try again later, bad gateway). wslay 1.1.1 rejects them with
//     1002; we accept them (rollcall itself sends 1013).
//  3. A close payload of one byte. wslay treats it as a close without a code
//     (1005); RFC 6455 5.5.1 requires a body to start with a 2-byte code, so
//     we fail with 1002.
//  4. Detection time. We judge a frame from its header alone (RSV, opcode,
//     mask, sizes), wslay only once a first payload byte has arrived; when
//     the stream ends in between, wslay is given filler bytes until it
//     judges that header too. Conversely wslay checks UTF-8 inside a frame
//     before the frame is complete; we check complete frames, so a stream
//     that ends inside such a frame may fail with 1007 in wslay while we
//     still wait.
//  5. Frame-level errors in wslay (fragmented or long control frame,
//     non-minimal or top-bit length) make wslay_event_recv fail and queue a
//     close without a code; they are protocol errors, compared as 1002.

#include <wslay/wslay.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/ws.h"

namespace rc::ws::wslay_diff {

// A complete message as both sides report it. For close: code (1005 when
// there was none) and reason; raw_bytes is wslay's payload length.
struct Message {
  std::uint8_t opcode = 0;
  std::string payload;
  std::uint16_t code = 0;
  std::size_t frame_index = 0;  // wslay only: frames started when it was reported
  std::size_t raw_bytes = 0;    // wslay close only

  bool same_as(const Message& o) const {
    return opcode == o.opcode && payload == o.payload && code == o.code;
  }
};

enum class End : std::uint8_t { kOpen, kClosed, kFailed };

struct Verdict {
  std::vector<Message> messages;
  End end = End::kOpen;
  std::uint16_t code = 0;                   // kFailed: the close code the session fails with
  std::size_t consumed = 0;                 // ours: bytes consumed
  std::vector<std::uint8_t> frame_opcodes;  // wslay: opcode of every frame started
};

inline std::string describe(const Message& m) {
  std::string s = "op" + std::to_string(m.opcode);
  if (m.opcode == kClose) s += " code " + std::to_string(m.code);
  s += " \"";
  for (char c : m.payload.substr(0, 40)) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b < 0x7F) {
      s += c;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", b);
      s += hex;
    }
  }
  if (m.payload.size() > 40) s += "...";
  return s + "\" (" + std::to_string(m.payload.size()) + " bytes)";
}

inline std::string describe(const Verdict& v) {
  std::string s;
  for (const Message& m : v.messages) s += "  " + describe(m) + "\n";
  static const char* const kEnds[] = {"open", "closed", "failed"};
  s += "  end: " + std::string(kEnds[static_cast<int>(v.end)]);
  if (v.end == End::kFailed) s += " " + std::to_string(v.code);
  return s + "\n";
}

// ---- our side

struct OurSink {
  Verdict* v;
  std::size_t padding;
  void on_text(std::uint8_t* data, std::size_t n) {
    // Touch the promised padding so that ASan sees any broken promise.
    volatile std::uint8_t sink = 0;
    for (std::size_t i = 0; i < padding; ++i) sink = sink ^ data[n + i];
    v->messages.push_back({.opcode = kText, .payload = std::string(data, data + n)});
  }
  void on_ping(std::string_view p) {
    v->messages.push_back({.opcode = kPing, .payload = std::string(p)});
  }
  void on_pong(std::string_view p) {
    v->messages.push_back({.opcode = kPong, .payload = std::string(p)});
  }
  void on_close(std::uint16_t code, std::string_view reason) {
    v->messages.push_back({.opcode = kClose, .payload = std::string(reason), .code = code});
    v->end = End::kClosed;
  }
  void on_error(std::uint16_t code, std::string_view) {
    v->end = End::kFailed;
    v->code = code;
  }
};

inline constexpr std::size_t kPadding = 16;

inline Verdict run_ours(const std::uint8_t* data, std::size_t size, std::size_t message_bytes_max) {
  // An exactly sized heap copy: ASan catches any read past size + padding.
  auto buffer = std::make_unique<std::uint8_t[]>(size + kPadding);
  if (size != 0) std::memcpy(buffer.get(), data, size);
  Verdict v;
  MessageReader reader(message_bytes_max, kPadding);
  OurSink sink{&v, kPadding};
  v.consumed = reader.feed(buffer.get(), size, sink);
  return v;
}

// Number of whole frames in data[0..size) (all of them valid: the reader
// consumed them).
inline std::size_t count_frames(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> copy(data, data + size);
  std::size_t at = 0;
  std::size_t frames = 0;
  while (at < size) {
    const Decoded d = decode_frame(copy.data() + at, size - at, SIZE_MAX);
    if (d.status != DecodeStatus::kFrame) std::abort();
    at += d.consumed;
    ++frames;
  }
  return frames;
}

// ---- wslay's side

struct WslayRun {
  std::vector<std::uint8_t> source;
  std::size_t offset = 0;
  Verdict v;
};

inline ssize_t wslay_recv(wslay_event_context_ptr ctx, std::uint8_t* buf, std::size_t len, int,
                          void* user) {
  auto* run = static_cast<WslayRun*>(user);
  if (run->offset == run->source.size()) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  const std::size_t n = std::min(len, run->source.size() - run->offset);
  std::memcpy(buf, run->source.data() + run->offset, n);
  run->offset += n;
  return static_cast<ssize_t>(n);
}

inline ssize_t wslay_discard(wslay_event_context_ptr, const std::uint8_t*, std::size_t len, int,
                             void*) {
  return static_cast<ssize_t>(len);
}

inline void wslay_frame_start(wslay_event_context_ptr,
                              const wslay_event_on_frame_recv_start_arg* arg, void* user) {
  static_cast<WslayRun*>(user)->v.frame_opcodes.push_back(arg->opcode);
}

inline void wslay_message(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg,
                          void* user) {
  auto* run = static_cast<WslayRun*>(user);
  Message m{.opcode = arg->opcode,
            .frame_index = run->v.frame_opcodes.size(),
            .raw_bytes = arg->msg_length};
  const char* msg = reinterpret_cast<const char*>(arg->msg);
  if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
    m.code = arg->status_code == 0 ? close_code::kNoStatus : arg->status_code;
    if (arg->msg_length >= 2) m.payload.assign(msg + 2, arg->msg_length - 2);
  } else if (arg->msg_length != 0) {
    m.payload.assign(msg, arg->msg_length);
  }
  run->v.messages.push_back(std::move(m));
}

// Runs wslay over everything in run->source not read yet and updates the
// verdict's end.
inline void pump(wslay_event_context_ptr ctx, WslayRun* run) {
  if (!wslay_event_get_read_enabled(ctx)) return;
  const int rv = wslay_event_recv(ctx);
  if (rv != 0) {
    run->v.end = End::kFailed;  // a frame-level protocol error (difference 5)
    run->v.code = close_code::kProtocolError;
    return;
  }
  if (wslay_event_get_read_enabled(ctx)) return;
  if (wslay_event_get_close_received(ctx)) {
    run->v.end = End::kClosed;
    return;
  }
  wslay_event_send(ctx);  // to learn the code of the close frame it queued
  run->v.end = End::kFailed;
  run->v.code = wslay_event_get_status_code_sent(ctx);
}

// filler_bytes_max > 0: if wslay is still open after the stream, feed it up
// to that many zero bytes, one at a time, until it judges the pending frame
// (difference 4).
inline Verdict run_wslay(const std::uint8_t* data, std::size_t size, std::size_t message_bytes_max,
                         std::size_t filler_bytes_max) {
  WslayRun run;
  run.source.assign(data, data + size);
  wslay_event_callbacks callbacks{};
  callbacks.recv_callback = wslay_recv;
  callbacks.send_callback = wslay_discard;
  callbacks.on_frame_recv_start_callback = wslay_frame_start;
  callbacks.on_msg_recv_callback = wslay_message;
  wslay_event_context_ptr ctx = nullptr;
  if (wslay_event_context_server_init(&ctx, &callbacks, &run) != 0) std::abort();
  wslay_event_config_set_max_recv_msg_length(ctx, message_bytes_max);
  pump(ctx, &run);
  for (std::size_t i = 0; i < filler_bytes_max && run.v.end == End::kOpen; ++i) {
    run.source.push_back(0);
    pump(ctx, &run);
  }
  wslay_event_context_free(ctx);
  return std::move(run.v);
}

// ---- the comparison

inline bool same_messages(const std::vector<Message>& a, const std::vector<Message>& b,
                          std::size_t count) {
  if (a.size() < count || b.size() < count) return false;
  for (std::size_t i = 0; i < count; ++i) {
    if (!a[i].same_as(b[i])) return false;
  }
  return true;
}

inline bool is_late_registered_code(std::uint16_t code) {
  return code >= 1012 && code <= 1014;
}

// Applies the mapped differences 1-4; true when they explain the verdicts.
inline bool explained(const Verdict& ours, const Verdict& theirs, const std::uint8_t* data,
                      std::size_t size) {
  const std::size_t n = ours.messages.size();
  if (ours.end == End::kFailed && ours.code == close_code::kUnsupportedData) {  // 1
    const std::size_t frame = count_frames(data, ours.consumed);
    if (theirs.frame_opcodes.size() <= frame || theirs.frame_opcodes[frame] != kBinary) {
      return false;
    }
    std::size_t before = 0;
    while (before < theirs.messages.size() && theirs.messages[before].frame_index <= frame) {
      ++before;
    }
    return before == n && same_messages(ours.messages, theirs.messages, n);
  }
  if (ours.end == End::kClosed && theirs.end == End::kFailed &&  // 2
      theirs.code == close_code::kProtocolError &&
      is_late_registered_code(ours.messages.back().code)) {
    return theirs.messages.size() + 1 == n && same_messages(ours.messages, theirs.messages, n - 1);
  }
  if (ours.end == End::kFailed && ours.code == close_code::kProtocolError &&  // 3
      theirs.end == End::kClosed && theirs.messages.back().raw_bytes == 1) {
    return theirs.messages.size() == n + 1 && same_messages(ours.messages, theirs.messages, n);
  }
  if (ours.end == End::kOpen && ours.consumed < size && theirs.end == End::kFailed &&  // 4
      theirs.code == close_code::kInvalidPayload) {
    return theirs.messages.size() == n && same_messages(ours.messages, theirs.messages, n);
  }
  return false;
}

// Feeds the stream to both and returns "" when they agree, else a report.
inline std::string compare(const std::uint8_t* data, std::size_t size,
                           std::size_t message_bytes_max) {
  const Verdict ours = run_ours(data, size, message_bytes_max);
  // Filler is only needed when we stopped early on a header (difference 4);
  // with 1003 we stopped on a whole frame, which wslay has seen too.
  const bool need_filler = ours.end == End::kFailed && ours.code != close_code::kUnsupportedData;
  const Verdict theirs = run_wslay(data, size, message_bytes_max,
                                   need_filler ? limits::ws_frame_header_bytes_max + 1 : 0);
  const std::size_t n = ours.messages.size();
  const bool agree = ours.end == theirs.end && ours.code == theirs.code &&
                     theirs.messages.size() == n &&
                     same_messages(ours.messages, theirs.messages, n);
  if (agree || explained(ours, theirs, data, size)) return {};
  return "MessageReader and wslay disagree (message max " + std::to_string(message_bytes_max) +
         ", " + std::to_string(size) + " bytes)\nours:\n" + describe(ours) + "wslay:\n" +
         describe(theirs);
}

inline std::size_t message_bytes_max_for(std::uint8_t selector) {
  return limits::ws_control_payload_bytes_max + 4 * std::size_t{selector};
}

}  // namespace rc::ws::wslay_diff

#ifndef RC_WS_WSLAY_HARNESS_ONLY
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string report = rc::ws::wslay_diff::compare(
      data + 1, size - 1, rc::ws::wslay_diff::message_bytes_max_for(data[0]));
  if (!report.empty()) {
    std::fputs(report.c_str(), stderr);
    std::abort();
  }
  return 0;
}
#endif
