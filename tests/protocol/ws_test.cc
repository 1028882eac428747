#include "protocol/ws.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/utf8.h"
#include "tests/protocol/client_frames.h"

namespace rc::ws {
namespace {

using test::Bytes;
using test::client_frame;
using test::close_payload;
using test::concat;
using test::FrameOptions;
using test::kRfcKey;

std::string as_string(const std::uint8_t* data, std::size_t n) {
  return std::string(reinterpret_cast<const char*>(data), n);
}

// Records every event as text, and checks the padding promise of on_text.
struct Recorder {
  std::size_t padding = 0;
  std::vector<std::string> events;
  std::uint16_t error_code = 0;
  bool padding_zeroed = true;  // holds for reassembled messages

  void on_text(std::uint8_t* data, std::size_t n) {
    events.push_back("text:" + as_string(data, n));
    last_text_data = data;
    for (std::size_t i = 0; i < padding; ++i) padding_zeroed &= data[n + i] == 0;
  }
  void on_ping(std::string_view p) { events.push_back("ping:" + std::string(p)); }
  void on_pong(std::string_view p) { events.push_back("pong:" + std::string(p)); }
  void on_close(std::uint16_t code, std::string_view reason) {
    events.push_back("close:" + std::to_string(code) + ":" + std::string(reason));
  }
  void on_error(std::uint16_t code, std::string_view reason) {
    error_code = code;
    events.push_back("error:" + std::to_string(code) + ":" + std::string(reason));
  }
  const std::uint8_t* last_text_data = nullptr;
};
static_assert(MessageSink<Recorder>);

// Feeds a stream to a reader in chunks of chunk_bytes, keeping the bytes it
// did not consume in front of the next chunk, the way a session does.
struct Session {
  Session(std::size_t message_bytes_max = 8192, std::size_t padding = 16)
      : reader(message_bytes_max, padding), padding(padding) {
    sink.padding = padding;
  }

  void feed(const Bytes& stream, std::size_t chunk_bytes) {
    for (std::size_t at = 0; at < stream.size(); at += chunk_bytes) {
      const std::size_t n = std::min(chunk_bytes, stream.size() - at);
      buffer.insert(buffer.end(), stream.begin() + at, stream.begin() + at + n);
      Bytes padded = buffer;
      padded.resize(buffer.size() + padding, 0);
      const std::size_t consumed = reader.feed(padded.data(), buffer.size(), sink);
      EXPECT_LE(consumed, buffer.size());
      // Keep the untouched tail (an incomplete frame is never unmasked).
      buffer.assign(padded.begin() + consumed, padded.begin() + buffer.size());
    }
  }

  MessageReader reader;
  Recorder sink;
  Bytes buffer;
  std::size_t padding;
};

std::vector<std::string> events_of(const Bytes& stream, std::size_t chunk_bytes = SIZE_MAX,
                                   std::size_t message_bytes_max = 8192) {
  Session s(message_bytes_max);
  s.feed(stream, chunk_bytes == SIZE_MAX ? std::max<std::size_t>(stream.size(), 1) : chunk_bytes);
  return s.sink.events;
}

using Events = std::vector<std::string>;

// ---- decode_frame: RFC 6455 section 5.7 examples

TEST(DecodeFrame, Rfc57SingleFrameMaskedText) {
  Bytes b = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  const Decoded d = decode_frame(b.data(), b.size(), 8192);
  ASSERT_EQ(d.status, DecodeStatus::kFrame);
  EXPECT_EQ(d.consumed, 11u);
  EXPECT_TRUE(d.frame.fin);
  EXPECT_EQ(d.frame.opcode, kText);
  EXPECT_EQ(d.frame.payload, b.data() + 6);  // in place
  EXPECT_EQ(as_string(d.frame.payload, d.frame.payload_bytes), "Hello");
}

TEST(DecodeFrame, Rfc57UnmaskedTextIsRejectedFromClient) {
  Bytes b = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  const Decoded d = decode_frame(b.data(), b.size(), 8192);
  ASSERT_EQ(d.status, DecodeStatus::kError);
  EXPECT_EQ(d.close_code, close_code::kProtocolError);
  EXPECT_EQ(d.reason, "unmasked frame");
}

TEST(DecodeFrame, Rfc57FragmentedHelLo) {
  const Bytes stream =
      concat({client_frame(kText, "Hel", {.fin = false}), client_frame(kContinuation, "lo")});
  Bytes b = stream;
  const Decoded first = decode_frame(b.data(), b.size(), 8192);
  ASSERT_EQ(first.status, DecodeStatus::kFrame);
  EXPECT_FALSE(first.frame.fin);
  EXPECT_EQ(first.frame.opcode, kText);
  EXPECT_EQ(as_string(first.frame.payload, first.frame.payload_bytes), "Hel");
  const Decoded second = decode_frame(b.data() + first.consumed, b.size() - first.consumed, 8192);
  ASSERT_EQ(second.status, DecodeStatus::kFrame);
  EXPECT_TRUE(second.frame.fin);
  EXPECT_EQ(second.frame.opcode, kContinuation);
  EXPECT_EQ(as_string(second.frame.payload, second.frame.payload_bytes), "lo");
  EXPECT_EQ(first.consumed + second.consumed, b.size());
  EXPECT_EQ(events_of(stream), Events{"text:Hello"});
}

TEST(DecodeFrame, Rfc57MaskedPongAndPing) {
  Bytes pong = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  const Decoded d = decode_frame(pong.data(), pong.size(), 8192);
  ASSERT_EQ(d.status, DecodeStatus::kFrame);
  EXPECT_EQ(d.frame.opcode, kPong);
  EXPECT_EQ(as_string(d.frame.payload, d.frame.payload_bytes), "Hello");
  EXPECT_EQ(events_of(client_frame(kPing, "Hello")), Events{"ping:Hello"});
}

TEST(DecodeFrame, Rfc57Length256) {
  const std::string payload(256, 'a');
  Bytes b = client_frame(kText, payload);
  ASSERT_EQ(b[1], 0x80 | 126);
  EXPECT_EQ(b[2], 0x01);
  EXPECT_EQ(b[3], 0x00);
  const Decoded d = decode_frame(b.data(), b.size(), 8192);
  ASSERT_EQ(d.status, DecodeStatus::kFrame);
  EXPECT_EQ(d.consumed, 2u + 2u + 4u + 256u);
  EXPECT_EQ(as_string(d.frame.payload, d.frame.payload_bytes), payload);
}

TEST(DecodeFrame, Rfc57Length64KiB) {
  std::string payload(65536, 'x');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  const Bytes stream = client_frame(kText, payload);
  Bytes b = stream;
  ASSERT_EQ(b[1], 0x80 | 127);
  const Bytes length(b.begin() + 2, b.begin() + 10);
  EXPECT_EQ(length, (Bytes{0, 0, 0, 0, 0, 0x01, 0x00, 0x00}));
  const Decoded d = decode_frame(b.data(), b.size(), 65536);
  ASSERT_EQ(d.status, DecodeStatus::kFrame);
  EXPECT_EQ(d.consumed, 2u + 8u + 4u + 65536u);
  EXPECT_TRUE(as_string(d.frame.payload, d.frame.payload_bytes) == payload);
  EXPECT_TRUE(events_of(stream, 1000, 65536) == Events{"text:" + payload});
}

// ---- decode_frame: incomplete input

TEST(DecodeFrame, PrefixesAreIncompleteAndLeftUntouched) {
  const Bytes whole = client_frame(kText, std::string(300, 'q'));
  for (std::size_t len = 0; len < whole.size(); ++len) {
    Bytes b = whole;
    const Decoded d = decode_frame(b.data(), len, 8192);
    ASSERT_EQ(d.status, DecodeStatus::kIncomplete) << len;
    EXPECT_EQ(d.needed, len < 4 ? 0u : whole.size()) << len;
    EXPECT_EQ(b, whole) << "no unmasking before the whole frame is there";
  }
}

TEST(DecodeFrame, EmptyPayloadFrame) {
  Bytes b = client_frame(kText, "");
  const Decoded d = decode_frame(b.data(), b.size(), 8192);
  ASSERT_EQ(d.status, DecodeStatus::kFrame);
  EXPECT_EQ(d.consumed, 6u);
  EXPECT_EQ(d.frame.payload_bytes, 0u);
}

TEST(DecodeFrame, UnmaskHandlesEveryLengthAndAlignment) {
  std::mt19937 rng(1);
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t n = 0; n < 40; ++n) {
      Bytes data(offset + n);
      for (auto& x : data) x = static_cast<std::uint8_t>(rng());
      const Bytes original = data;
      const std::uint8_t key[4] = {1, 2, 0x80, 0xFF};
      unmask(data.data() + offset, n, key);
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(data[offset + i], original[offset + i] ^ key[i % 4]);
      }
    }
  }
}

// ---- decode_frame: protocol errors (1002), each from its own header

Decoded decode_bytes(Bytes b, std::size_t max = 8192) {
  return decode_frame(b.data(), b.size(), max);
}

void expect_protocol_error(const Bytes& b, std::string_view reason) {
  const Decoded d = decode_bytes(b);
  ASSERT_EQ(d.status, DecodeStatus::kError);
  EXPECT_EQ(d.close_code, close_code::kProtocolError);
  EXPECT_EQ(d.reason, reason);
  // The session verdict is the same.
  Session s;
  s.feed(b, b.size());
  EXPECT_TRUE(s.reader.failed());
  EXPECT_EQ(s.sink.error_code, close_code::kProtocolError);
}

TEST(DecodeFrame, RsvBitsAreProtocolError) {
  for (std::uint8_t rsv : {1, 2, 4, 7}) {
    expect_protocol_error(client_frame(kText, "hi", {.rsv = rsv}), "reserved bits set");
  }
}

TEST(DecodeFrame, ReservedOpcodesAreProtocolError) {
  for (std::uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    expect_protocol_error(client_frame(op, "x"), "reserved opcode");
  }
}

TEST(DecodeFrame, FragmentedControlFrameIsProtocolError) {
  for (std::uint8_t op : {kPing, kPong, kClose}) {
    expect_protocol_error(client_frame(op, "", {.fin = false}), "fragmented control frame");
  }
}

TEST(DecodeFrame, LongControlFrameIsProtocolError) {
  for (std::uint8_t op : {kPing, kPong, kClose}) {
    expect_protocol_error(client_frame(op, std::string(126, 'p')), "control frame too long");
  }
  // Known from the first two bytes, before the length or payload arrive.
  const Decoded d = decode_bytes({0x89, 0x80 | 126});
  EXPECT_EQ(d.status, DecodeStatus::kError);
  const Decoded ok = decode_bytes(client_frame(kPing, std::string(125, 'p')));
  EXPECT_EQ(ok.status, DecodeStatus::kFrame);
}

TEST(DecodeFrame, UnmaskedFrameIsProtocolError) {
  expect_protocol_error(client_frame(kText, "hi", {.masked = false}), "unmasked frame");
  expect_protocol_error(client_frame(kPing, "", {.masked = false}), "unmasked frame");
}

TEST(DecodeFrame, LengthTopBitIsProtocolError) {
  Bytes b = {0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0x05, 1, 2, 3, 4};
  expect_protocol_error(b, "length top bit set");
}

TEST(DecodeFrame, NonMinimalLengthsAreProtocolError) {
  expect_protocol_error(client_frame(kText, "hello", {.length_bytes = 2}), "non-minimal length");
  expect_protocol_error(client_frame(kText, std::string(125, 'a'), {.length_bytes = 2}),
                        "non-minimal length");
  expect_protocol_error(client_frame(kText, std::string(300, 'a'), {.length_bytes = 8}),
                        "non-minimal length");
  expect_protocol_error(client_frame(kText, std::string(65535, 'a'), {.length_bytes = 8}),
                        "non-minimal length");
  EXPECT_EQ(decode_bytes(client_frame(kText, std::string(126, 'a'), {.length_bytes = 2})).status,
            DecodeStatus::kFrame);
}

// ---- 1009: detected from the header alone

TEST(DecodeFrame, TooBigIsKnownFromTheHeader) {
  const Bytes whole = client_frame(kText, std::string(10000, 'a'));
  Bytes header(whole.begin(), whole.begin() + 4);  // no mask key, no payload yet
  const Decoded d = decode_frame(header.data(), header.size(), 8192);
  ASSERT_EQ(d.status, DecodeStatus::kError);
  EXPECT_EQ(d.close_code, close_code::kTooBig);
  const Decoded exact = decode_bytes(client_frame(kText, std::string(8192, 'a')));
  EXPECT_EQ(exact.status, DecodeStatus::kFrame);
}

TEST(DecodeFrame, ControlFramesIgnoreThePayloadMaximum) {
  const Decoded d = decode_bytes(client_frame(kPing, std::string(100, 'p')), 10);
  EXPECT_EQ(d.status, DecodeStatus::kFrame);
}

// ---- MessageReader: messages

TEST(MessageReader, SingleTextInPlace) {
  Session s;
  Bytes b = client_frame(kText, "{\"type\":\"ping\"}");
  b.resize(b.size() + s.padding);
  const std::size_t consumed = s.reader.feed(b.data(), b.size() - s.padding, s.sink);
  EXPECT_EQ(consumed, b.size() - s.padding);
  EXPECT_EQ(s.sink.events, Events{"text:{\"type\":\"ping\"}"});
  EXPECT_EQ(s.sink.last_text_data, b.data() + 6);
  EXPECT_EQ(s.reader.assembly_bytes_allocated(), 0u);
}

TEST(MessageReader, EmptyTextMessage) {
  EXPECT_EQ(events_of(client_frame(kText, "")), Events{"text:"});
  EXPECT_EQ(
      events_of(concat({client_frame(kText, "", {.fin = false}), client_frame(kContinuation, "")})),
      Events{"text:"});
}

TEST(MessageReader, SeveralFramesInOneFeed) {
  const Bytes b = concat({client_frame(kText, "one"), client_frame(kPing, "p"),
                          client_frame(kText, "two"), client_frame(kPong, "")});
  EXPECT_EQ(events_of(b), (Events{"text:one", "ping:p", "text:two", "pong:"}));
}

TEST(MessageReader, FragmentedMessageIsReassembledWithPadding) {
  Session s(8192, 32);
  s.feed(
      concat({client_frame(kText, "Hel", {.fin = false}),
              client_frame(kContinuation, "", {.fin = false}), client_frame(kContinuation, "lo")}),
      1000);
  EXPECT_EQ(s.sink.events, Events{"text:Hello"});
  EXPECT_TRUE(s.sink.padding_zeroed);
  EXPECT_EQ(s.reader.assembly_bytes_allocated(), 0u) << "freed once the message is delivered";
}

TEST(MessageReader, AssemblyBufferExistsOnlyDuringFragmentedMessage) {
  Session s;
  s.feed(client_frame(kText, "part", {.fin = false}), 100);
  EXPECT_GT(s.reader.assembly_bytes_allocated(), 0u);
  EXPECT_LE(s.reader.assembly_bytes_allocated(), 8192u + s.padding);
  s.feed(client_frame(kContinuation, "end"), 100);
  EXPECT_EQ(s.reader.assembly_bytes_allocated(), 0u);
  EXPECT_EQ(s.sink.events, Events{"text:partend"});
}

TEST(MessageReader, ManySmallFragmentsGrowTheBuffer) {
  Bytes stream = client_frame(kText, "a", {.fin = false});
  std::string expected = "a";
  for (int i = 0; i < 500; ++i) {
    const std::string piece = std::to_string(i);
    stream = concat({stream, client_frame(kContinuation, piece, {.fin = false})});
    expected += piece;
  }
  stream = concat({stream, client_frame(kContinuation, "z")});
  EXPECT_EQ(events_of(stream, 7), Events{"text:" + expected + "z"});
}

TEST(MessageReader, ControlFramesInterleavedWithFragments) {
  const Bytes b = concat({client_frame(kText, "Hel", {.fin = false}), client_frame(kPing, "p1"),
                          client_frame(kContinuation, "l", {.fin = false}),
                          client_frame(kPong, "q"), client_frame(kPing, ""),
                          client_frame(kContinuation, "o"), client_frame(kText, "next")});
  EXPECT_EQ(events_of(b), (Events{"ping:p1", "pong:q", "ping:", "text:Hello", "text:next"}));
}

TEST(MessageReader, FramesLastFeedCountsEveryWholeFrame) {
  Session s;
  // Two whole frames, the fragments of one message with a ping between them,
  // and the first byte of the next frame.
  const Bytes whole = concat({client_frame(kText, "Hel", {.fin = false}), client_frame(kPing, "p"),
                              client_frame(kContinuation, "lo")});
  Bytes stream = concat({client_frame(kText, "one"), whole});
  const Bytes last = client_frame(kText, "last");
  stream.push_back(last[0]);
  s.feed(stream, stream.size());
  EXPECT_EQ(s.reader.frames_last_feed(), 4u);
  s.feed(Bytes(last.begin() + 1, last.end()), last.size());
  EXPECT_EQ(s.reader.frames_last_feed(), 1u);
  s.feed(client_frame(kText, "x", {.rsv = 1}), 100);  // a failing frame is not counted
  EXPECT_EQ(s.reader.frames_last_feed(), 0u);
  EXPECT_EQ(s.sink.events.back().rfind("error:1002:", 0), 0u) << s.sink.events.back();
}

TEST(MessageReader, CloseInsideFragmentedMessageEndsTheSession) {
  Session s;
  s.feed(
      concat({client_frame(kText, "Hel", {.fin = false}),
              client_frame(kClose, close_payload(1000, "bye")), client_frame(kContinuation, "lo")}),
      1000);
  EXPECT_EQ(s.sink.events, Events{"close:1000:bye"});
  EXPECT_TRUE(s.reader.closed());
  EXPECT_EQ(s.reader.assembly_bytes_allocated(), 0u);
}

Bytes mixed_stream() {
  return concat({client_frame(kText, "first"), client_frame(kPing, "are you there"),
                 client_frame(kText, "caf\xC3", {.fin = false}),
                 client_frame(kContinuation, "\xA9 ", {.fin = false, .key = {9, 8, 7, 6}}),
                 client_frame(kPong, "yes"), client_frame(kContinuation, std::string(300, 'z')),
                 client_frame(kText, std::string(70000, 'b')),
                 client_frame(kClose, close_payload(1001, "going"))});
}

TEST(MessageReader, ByteAtATimeMatchesOneShot) {
  const Bytes stream = mixed_stream();
  const Events whole = events_of(stream, SIZE_MAX, 100000);
  ASSERT_EQ(whole.size(), 6u);
  EXPECT_EQ(whole[0], "text:first");
  EXPECT_EQ(whole[3], "text:caf\xC3\xA9 " + std::string(300, 'z'));
  EXPECT_EQ(whole[5], "close:1001:going");
  Session s(100000);
  // One byte at a time through the 70000-byte frame is quadratic in this
  // harness, so feed bytes singly everywhere except its payload.
  const std::size_t big_start = stream.size() - (2 + 8 + 4 + 70000) - (2 + 4 + 2 + 5);
  Bytes head(stream.begin(), stream.begin() + big_start + 14);
  Bytes body(stream.begin() + big_start + 14, stream.end() - (2 + 4 + 7));
  Bytes tail(stream.end() - (2 + 4 + 7), stream.end());
  s.feed(head, 1);
  s.feed(body, 4096);
  s.feed(tail, 1);
  EXPECT_TRUE(s.sink.events == whole) << "events differ from the one-shot run";
}

TEST(MessageReader, RandomChunkingMatchesOneShot) {
  const Bytes stream = mixed_stream();
  const Events whole = events_of(stream, SIZE_MAX, 100000);
  std::mt19937 rng(42);
  for (int round = 0; round < 20; ++round) {
    Session s(100000);
    std::size_t at = 0;
    while (at < stream.size()) {
      const std::size_t n = std::min<std::size_t>(1 + rng() % 3000, stream.size() - at);
      s.feed(Bytes(stream.begin() + at, stream.begin() + at + n), n);
      at += n;
    }
    EXPECT_TRUE(s.sink.events == whole) << "events differ from the one-shot run";
  }
}

TEST(MessageReader, PendingFrameBytesTellsTheBufferSize) {
  MessageReader reader(8192, 0);
  Recorder sink;
  Bytes b = client_frame(kText, std::string(300, 'a'));
  EXPECT_EQ(reader.feed(b.data(), 3, sink), 0u);
  EXPECT_EQ(reader.pending_frame_bytes(), 0u) << "length not known yet";
  EXPECT_EQ(reader.feed(b.data(), 4, sink), 0u);
  EXPECT_EQ(reader.pending_frame_bytes(), b.size());
  EXPECT_EQ(reader.feed(b.data(), b.size(), sink), b.size());
  EXPECT_EQ(reader.pending_frame_bytes(), 0u);
  EXPECT_EQ(sink.events.size(), 1u);
}

// ---- MessageReader: each close-code path

TEST(MessageReader, BinaryIs1003) {
  Session s;
  s.feed(concat({client_frame(kText, "ok"), client_frame(kBinary, "\x01\x02")}), 100);
  EXPECT_EQ(s.sink.events, (Events{"text:ok", "error:1003:binary messages are not supported"}));
  EXPECT_TRUE(s.reader.failed());
}

TEST(MessageReader, FragmentedBinaryIs1003AtItsFirstFrame) {
  EXPECT_EQ(events_of(client_frame(kBinary, "ab", {.fin = false})),
            Events{"error:1003:binary messages are not supported"});
}

TEST(MessageReader, ContinuationWithoutMessageIs1002) {
  EXPECT_EQ(events_of(client_frame(kContinuation, "lo")),
            Events{"error:1002:continuation frame without a message"});
}

TEST(MessageReader, NewMessageInsideFragmentedMessageIs1002) {
  for (std::uint8_t op : {kText, kBinary}) {
    EXPECT_EQ(events_of(concat({client_frame(kText, "a", {.fin = false}), client_frame(op, "b")})),
              Events{"error:1002:new message inside a fragmented message"});
  }
}

TEST(MessageReader, SequencingErrorBeatsTooBig) {
  // A misplaced continuation whose header also announces too many bytes is
  // judged a protocol error first, as wslay does.
  EXPECT_EQ(events_of(client_frame(kContinuation, std::string(9000, 'a')), SIZE_MAX, 8192),
            Events{"error:1002:continuation frame without a message"});
}

TEST(MessageReader, TooBigSingleFrameIs1009BeforeThePayload) {
  Session s(8192);
  const Bytes whole = client_frame(kText, std::string(9000, 'a'));
  s.feed(Bytes(whole.begin(), whole.begin() + 4), 4);  // the header's length only
  EXPECT_EQ(s.sink.events, Events{"error:1009:message too big"});
  EXPECT_TRUE(s.reader.failed());
}

TEST(MessageReader, TooBigFragmentedMessageIs1009AtTheOverflowingHeader) {
  Session s(10);
  s.feed(client_frame(kText, "hello", {.fin = false}), 100);
  EXPECT_TRUE(s.sink.events.empty());
  const Bytes second = client_frame(kContinuation, "world!");
  s.feed(Bytes(second.begin(), second.begin() + 2), 2);
  EXPECT_EQ(s.sink.events, Events{"error:1009:message too big"});
  EXPECT_EQ(s.reader.assembly_bytes_allocated(), 0u);
}

TEST(MessageReader, MessageOfExactlyTheMaximumPasses) {
  EXPECT_EQ(events_of(concat({client_frame(kText, "hello", {.fin = false}),
                              client_frame(kContinuation, "world")}),
                      SIZE_MAX, 10),
            Events{"text:helloworld"});
  EXPECT_EQ(events_of(client_frame(kText, "helloworld"), SIZE_MAX, 10), Events{"text:helloworld"});
}

TEST(MessageReader, InvalidUtf8TextIs1007) {
  EXPECT_EQ(events_of(client_frame(kText, "bad \xC0\xAF")), Events{"error:1007:text is not UTF-8"});
}

TEST(MessageReader, InvalidUtf8FragmentFailsBeforeTheMessageEnds) {
  Session s;
  s.feed(concat({client_frame(kText, "ok", {.fin = false}),
                 client_frame(kContinuation, "\xED\xA0", {.fin = false})}),
         100);
  EXPECT_EQ(s.sink.events, Events{"error:1007:text is not UTF-8"});
}

TEST(MessageReader, CodePointSplitAcrossFragmentsIsFine) {
  EXPECT_EQ(events_of(concat({client_frame(kText, "\xF0\x9F", {.fin = false}),
                              client_frame(kContinuation, "\x91", {.fin = false}),
                              client_frame(kContinuation, "\x8D")})),
            Events{"text:\xF0\x9F\x91\x8D"});
}

TEST(MessageReader, TruncatedCodePointAtMessageEndIs1007) {
  EXPECT_EQ(events_of(concat({client_frame(kText, "\xF0\x9F", {.fin = false}),
                              client_frame(kContinuation, "")})),
            Events{"error:1007:text is not UTF-8"});
}

// ---- MessageReader: close payload rules

TEST(MessageReader, EmptyCloseReports1005) {
  Session s;
  const Bytes b = concat({client_frame(kClose, ""), client_frame(kText, "after")});
  s.feed(b, b.size());
  EXPECT_EQ(s.sink.events, Events{"close:1005:"});
  EXPECT_TRUE(s.reader.closed());
  EXPECT_FALSE(s.reader.failed());
}

TEST(MessageReader, OneByteCloseIs1002) {
  EXPECT_EQ(events_of(client_frame(kClose, "\x03")),
            Events{"error:1002:close payload of one byte"});
}

TEST(MessageReader, CloseCodesNotValidOnTheWireAre1002) {
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    EXPECT_EQ(events_of(client_frame(kClose, close_payload(code))),
              Events{"error:1002:invalid close code"})
        << code;
  }
}

TEST(MessageReader, CloseCodesValidOnTheWireAreReported) {
  for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                             3000, 3999, 4000, 4999}) {
    EXPECT_EQ(events_of(client_frame(kClose, close_payload(code, "why"))),
              Events{"close:" + std::to_string(code) + ":why"});
  }
}

TEST(MessageReader, CloseReasonMustBeUtf8) {
  EXPECT_EQ(events_of(client_frame(kClose, close_payload(1000, "caf\xC3\xA9"))),
            Events{"close:1000:caf\xC3\xA9"});
  EXPECT_EQ(events_of(client_frame(kClose, close_payload(1000, "bad\xFF"))),
            Events{"error:1007:close reason is not UTF-8"});
}

// ---- MessageReader: after the end

TEST(MessageReader, ConsumesNothingAfterClose) {
  MessageReader reader(8192, 0);
  Recorder sink;
  Bytes close = client_frame(kClose, close_payload(1000));
  Bytes b = concat({close, client_frame(kText, "late")});
  EXPECT_EQ(reader.feed(b.data(), b.size(), sink), close.size()) << "the close frame is consumed";
  EXPECT_EQ(reader.feed(b.data() + close.size(), b.size() - close.size(), sink), 0u);
  EXPECT_EQ(sink.events, Events{"close:1000:"});
}

TEST(MessageReader, ConsumesNothingAfterError) {
  MessageReader reader(8192, 0);
  Recorder sink;
  Bytes good = client_frame(kText, "fine");
  Bytes b = concat({good, client_frame(kText, "x", {.masked = false}), client_frame(kText, "y")});
  EXPECT_EQ(reader.feed(b.data(), b.size(), sink), good.size()) << "the bad frame is not consumed";
  EXPECT_TRUE(reader.failed());
  Bytes more = client_frame(kText, "z");
  EXPECT_EQ(reader.feed(more.data(), more.size(), sink), 0u);
  EXPECT_EQ(sink.events, (Events{"text:fine", "error:1002:unmasked frame"}));
}

// ---- server frames

TEST(ServerFrames, HeaderSizes) {
  EXPECT_EQ(server_header_bytes(0), 2u);
  EXPECT_EQ(server_header_bytes(125), 2u);
  EXPECT_EQ(server_header_bytes(126), 4u);
  EXPECT_EQ(server_header_bytes(65535), 4u);
  EXPECT_EQ(server_header_bytes(65536), 10u);
  EXPECT_EQ(server_header_bytes(SIZE_MAX >> 1), kServerHeaderBytesMax);
}

Bytes header_of(std::uint8_t opcode, std::size_t n) {
  Bytes out(kServerHeaderBytesMax, 0xEE);
  out.resize(write_server_header(out.data(), opcode, n));
  EXPECT_EQ(out.size(), server_header_bytes(n));
  return out;
}

TEST(ServerFrames, HeadersMatchRfc57) {
  EXPECT_EQ(header_of(kText, 5), (Bytes{0x81, 0x05}));
  EXPECT_EQ(header_of(kPong, 5), (Bytes{0x8A, 0x05}));
  EXPECT_EQ(header_of(kPing, 0), (Bytes{0x89, 0x00}));
  EXPECT_EQ(header_of(kBinary, 256), (Bytes{0x82, 0x7E, 0x01, 0x00}));
  EXPECT_EQ(header_of(kText, 65535), (Bytes{0x81, 0x7E, 0xFF, 0xFF}));
  EXPECT_EQ(header_of(kBinary, 65536), (Bytes{0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}));
  EXPECT_EQ(header_of(kText, 0x0102030405ull),
            (Bytes{0x81, 0x7F, 0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x05}));
}

TEST(ServerFrames, LongControlFrameIsAProgrammerError) {
  std::uint8_t out[kServerHeaderBytesMax];
  EXPECT_DEATH(write_server_header(out, kPing, 126), "assertion failed");
}

Bytes close_frame_of(std::uint16_t code, std::string_view reason) {
  Bytes out(kCloseFrameBytesMax + 8, 0xEE);
  const std::size_t n = write_close_frame(out.data(), code, reason);
  EXPECT_LE(n, kCloseFrameBytesMax);
  EXPECT_EQ(out[n], 0xEE) << "wrote past its length";
  out.resize(n);
  return out;
}

TEST(ServerFrames, CloseFrameWithCodeAndReason) {
  EXPECT_EQ(close_frame_of(1000, "bye"), (Bytes{0x88, 0x05, 0x03, 0xE8, 'b', 'y', 'e'}));
  EXPECT_EQ(close_frame_of(close_code::kTooBig, ""), (Bytes{0x88, 0x02, 0x03, 0xF1}));
  EXPECT_EQ(close_frame_of(close_code::kNoStatus, "ignored"), (Bytes{0x88, 0x00}));
}

TEST(ServerFrames, CloseReasonIsCutOnACodePointBoundary) {
  const Bytes plain = close_frame_of(1001, std::string(200, 'a'));
  EXPECT_EQ(plain.size(), 2u + 2u + 123u);
  EXPECT_EQ(plain[1], 125);
  for (std::size_t ascii = 118; ascii <= 123; ++ascii) {
    const std::string reason = std::string(ascii, 'a') + "\xF0\x9F\x91\x8D\xE2\x82\xAC";
    const Bytes frame = close_frame_of(1001, reason);
    const std::string_view kept(reinterpret_cast<const char*>(frame.data()) + 4, frame.size() - 4);
    EXPECT_LE(kept.size(), 123u);
    EXPECT_TRUE(utf8::valid(kept)) << ascii;
    EXPECT_EQ(kept, std::string_view(reason).substr(0, kept.size()));
    EXPECT_GE(kept.size(), 120u);
  }
}

TEST(ServerFrames, OurCloseFrameIsAcceptedByTheReader) {
  // A server frame with the mask bit and a zero key added is a valid client
  // frame: the round trip checks header and payload layout together.
  Bytes frame = close_frame_of(close_code::kTryAgain, "room full");
  Bytes client = {frame[0], static_cast<std::uint8_t>(frame[1] | 0x80), 0, 0, 0, 0};
  client.insert(client.end(), frame.begin() + 2, frame.end());
  EXPECT_EQ(events_of(client), Events{"close:1013:room full"});
}

TEST(AcceptKey, Rfc6455Example) {
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(AcceptKey, DependsOnTheKey) {
  const std::string a = accept_key("AQIDBAUGBwgJCgsMDQ4PEA==");
  EXPECT_EQ(a.size(), 28u);
  EXPECT_NE(a, accept_key("dGhlIHNhbXBsZSBub25jZQ=="));
}

}  // namespace
}  // namespace rc::ws
