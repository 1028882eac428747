// Fuzz target for rc::ws::MessageReader: the stream is fed once whole and
// once in chunks whose sizes come from the input itself, through a buffer
// that keeps the unconsumed bytes the way a session does. Both runs must
// report the same events, and every event must keep the reader's promises.
//
// Input (shared with ws_wslay_fuzz and tests/fuzz/corpus/ws): byte 0 picks
// the message maximum (125 + 4 * byte); the rest is the client's byte stream.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/limits.h"
#include "protocol/utf8.h"
#include "protocol/ws.h"

namespace {

using rc::ws::MessageReader;

constexpr std::size_t kPadding = 32;

#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "ws_fuzz: check failed: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

// Records events as text and checks each against the reader's contract.
struct CheckingSink {
  std::size_t message_bytes_max;
  std::vector<std::string> events;
  bool ended = false;

  void event(std::string e) {
    FUZZ_CHECK(!ended);  // nothing after on_close / on_error
    events.push_back(std::move(e));
  }
  void on_text(std::uint8_t* data, std::size_t n) {
    const std::string_view text(reinterpret_cast<const char*>(data), n);
    FUZZ_CHECK(n <= message_bytes_max);
    FUZZ_CHECK(rc::utf8::valid(text));
    volatile std::uint8_t touch = 0;  // the padding must be readable (ASan)
    for (std::size_t i = 0; i < kPadding; ++i) touch = touch ^ data[n + i];
    event("text:" + std::string(text));
  }
  void on_ping(std::string_view p) {
    FUZZ_CHECK(p.size() <= rc::limits::ws_control_payload_bytes_max);
    event("ping:" + std::string(p));
  }
  void on_pong(std::string_view p) {
    FUZZ_CHECK(p.size() <= rc::limits::ws_control_payload_bytes_max);
    event("pong:" + std::string(p));
  }
  void on_close(std::uint16_t code, std::string_view reason) {
    FUZZ_CHECK(code == rc::ws::close_code::kNoStatus || rc::ws::close_code_receivable(code));
    FUZZ_CHECK(reason.size() <= rc::limits::ws_close_reason_bytes_max);
    FUZZ_CHECK(rc::utf8::valid(reason));
    event("close:" + std::to_string(code) + ":" + std::string(reason));
    ended = true;
  }
  void on_error(std::uint16_t code, std::string_view reason) {
    FUZZ_CHECK(code == 1002 || code == 1003 || code == 1007 || code == 1009);
    FUZZ_CHECK(!reason.empty());
    event("error:" + std::to_string(code));
    ended = true;
  }
};

// One feed() over an exactly sized heap copy of bytes (so that ASan sees a
// read past the promised padding); returns what was consumed and leaves the
// bytes as the reader left them (frames it consumed are unmasked).
std::size_t feed_copy(MessageReader& reader, std::vector<std::uint8_t>& bytes, CheckingSink& sink) {
  auto buffer = std::make_unique<std::uint8_t[]>(bytes.size() + kPadding);
  if (!bytes.empty()) std::memcpy(buffer.get(), bytes.data(), bytes.size());
  const bool ended_before = sink.ended;
  const std::size_t consumed = reader.feed(buffer.get(), bytes.size(), sink);
  FUZZ_CHECK(consumed <= bytes.size());
  if (ended_before) FUZZ_CHECK(consumed == 0);
  FUZZ_CHECK(sink.ended == (reader.failed() || reader.closed()));
  bytes.assign(buffer.get(), buffer.get() + bytes.size());
  return consumed;
}

// After a feed that did not end the session, the rest must be an incomplete
// frame, and pending_frame_bytes() must describe it.
void check_rest(const MessageReader& reader, std::size_t rest_bytes, std::size_t max) {
  if (reader.failed() || reader.closed()) {
    FUZZ_CHECK(reader.assembly_bytes_allocated() == 0);
    return;
  }
  const std::size_t pending = reader.pending_frame_bytes();
  if (pending == 0) {
    FUZZ_CHECK(rest_bytes < rc::limits::ws_frame_header_bytes_max);
  } else {
    FUZZ_CHECK(pending > rest_bytes);
    FUZZ_CHECK(pending <= rc::limits::ws_frame_header_bytes_max + max);
  }
  FUZZ_CHECK(reader.assembly_bytes_allocated() <= max + kPadding);
}

std::vector<std::string> run_whole(const std::uint8_t* data, std::size_t size, std::size_t max) {
  MessageReader reader(max, kPadding);
  CheckingSink sink{max};
  std::vector<std::uint8_t> bytes(data, data + size);
  const std::size_t consumed = feed_copy(reader, bytes, sink);
  check_rest(reader, size - consumed, max);
  std::vector<std::uint8_t> none;
  if (sink.ended) FUZZ_CHECK(feed_copy(reader, none, sink) == 0);
  return sink.events;
}

std::vector<std::string> run_chunked(const std::uint8_t* data, std::size_t size, std::size_t max) {
  MessageReader reader(max, kPadding);
  CheckingSink sink{max};
  std::vector<std::uint8_t> pending;
  std::size_t at = 0;
  for (std::size_t k = 0; at < size; ++k) {
    // Chunk sizes 1..64 read from the input itself, so the fuzzer steers
    // the split points along with the bytes.
    const std::size_t chunk = std::min<std::size_t>(1 + data[(k * 7) % size] % 64, size - at);
    pending.insert(pending.end(), data + at, data + at + chunk);
    at += chunk;
    const std::size_t consumed = feed_copy(reader, pending, sink);
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(consumed));
    check_rest(reader, pending.size(), max);
  }
  return sink.events;
}

// write_close_frame: any valid reason comes back as a valid prefix that
// the reader accepts.
void check_close_frame(const std::uint8_t* data, std::size_t size) {
  const std::string_view reason(reinterpret_cast<const char*>(data),
                                std::min<std::size_t>(size, 200));
  if (!rc::utf8::valid(reason)) return;
  std::uint8_t frame[rc::ws::kCloseFrameBytesMax];
  const std::size_t n = rc::ws::write_close_frame(frame, 1000, reason);
  FUZZ_CHECK(n >= 4 && n <= sizeof frame);
  const std::string_view kept(reinterpret_cast<const char*>(frame) + 4, n - 4);
  FUZZ_CHECK(rc::utf8::valid(kept));
  FUZZ_CHECK(reason.substr(0, kept.size()) == kept);
  FUZZ_CHECK(kept.size() + 3 >= std::min<std::size_t>(reason.size(), 123));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t max = rc::limits::ws_control_payload_bytes_max + 4 * std::size_t{data[0]};
  const std::uint8_t* stream = data + 1;
  const std::size_t stream_bytes = size - 1;
  const std::vector<std::string> whole = run_whole(stream, stream_bytes, max);
  if (stream_bytes != 0) FUZZ_CHECK(run_chunked(stream, stream_bytes, max) == whole);
  check_close_frame(stream, stream_bytes);
  return 0;
}
