// The differential test against wslay, as a unit test: crafted inputs plus a
// few thousand seeded random streams and mutations of them. The harness and
// the list of deliberate differences live in tests/fuzz/ws_wslay_fuzz.cc,
// shared with the fuzz target.

#define RC_WS_WSLAY_HARNESS_ONLY
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <random>

#include "tests/fuzz/ws_wslay_fuzz.cc"
#include "tests/protocol/client_frames.h"

namespace rc::ws::wslay_diff {
namespace {

using test::Bytes;
using test::client_frame;
using test::close_payload;
using test::concat;
using test::FrameOptions;

std::string hex(const Bytes& b) {
  std::string s;
  char byte[4];
  for (std::size_t i = 0; i < b.size() && i < 200; ++i) {
    std::snprintf(byte, sizeof byte, "%02x ", b[i]);
    s += byte;
  }
  return s;
}

void expect_agreement(const Bytes& stream, std::size_t max = 256) {
  const std::string report = compare(stream.data(), stream.size(), max);
  EXPECT_EQ(report, "") << "input: " << hex(stream);
}

// ---- the harness reads wslay right

TEST(WslayHarness, SeesMessagesAndEnds) {
  const Bytes hello = client_frame(kText, "Hello");
  const Verdict v = run_wslay(hello.data(), hello.size(), 256, 0);
  ASSERT_EQ(v.messages.size(), 1u);
  EXPECT_EQ(v.messages[0].payload, "Hello");
  EXPECT_EQ(v.end, End::kOpen);

  const Bytes unmasked = client_frame(kText, "Hello", {.masked = false});
  const Verdict failed = run_wslay(unmasked.data(), unmasked.size(), 256, 0);
  EXPECT_EQ(failed.end, End::kFailed);
  EXPECT_EQ(failed.code, close_code::kProtocolError);

  const Bytes close = client_frame(kClose, close_payload(1000, "bye"));
  const Verdict closed = run_wslay(close.data(), close.size(), 256, 0);
  EXPECT_EQ(closed.end, End::kClosed);
  ASSERT_EQ(closed.messages.size(), 1u);
  EXPECT_EQ(closed.messages[0].code, 1000);
  EXPECT_EQ(closed.messages[0].payload, "bye");
}

TEST(WslayHarness, DocumentedDifferencesStillHold) {
  // If wslay ever changes here, the mappings in ws_wslay_fuzz.cc can go.
  const Bytes binary = client_frame(kBinary, "\x01\x02");
  EXPECT_EQ(run_wslay(binary.data(), binary.size(), 256, 0).messages.size(), 1u);
  const Bytes late = client_frame(kClose, close_payload(1013));
  EXPECT_EQ(run_wslay(late.data(), late.size(), 256, 0).code, close_code::kProtocolError);
  const Bytes one = client_frame(kClose, "\x03");
  EXPECT_EQ(run_wslay(one.data(), one.size(), 256, 0).end, End::kClosed);
  const Bytes header_only = {0xC1, 0x85};  // RSV1 set, payload not there yet
  EXPECT_EQ(run_wslay(header_only.data(), header_only.size(), 256, 0).end, End::kOpen);
}

// ---- crafted inputs

TEST(WslayDifferential, CraftedStreams) {
  const std::vector<Bytes> streams = {
      {},
      {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},  // RFC 5.7
      {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},                          // unmasked
      {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},  // masked pong
      concat({client_frame(kText, "Hel", {.fin = false}), client_frame(kContinuation, "lo")}),
      concat({client_frame(kText, "Hel", {.fin = false}), client_frame(kPing, "p"),
              client_frame(kContinuation, "l", {.fin = false}), client_frame(kPong, ""),
              client_frame(kContinuation, "o")}),
      client_frame(kText, std::string(200, 'a')),
      client_frame(kText, std::string(256, 'a')),
      client_frame(kText, std::string(257, 'a')),
      concat({client_frame(kText, std::string(200, 'a'), {.fin = false}),
              client_frame(kContinuation, std::string(57, 'b'))}),
      concat({client_frame(kText, std::string(200, 'a'), {.fin = false}),
              client_frame(kContinuation, std::string(57, 'b'), {.fin = false}),
              client_frame(kContinuation, "c")}),
      client_frame(kText, "x", {.rsv = 4}),
      client_frame(kText, "x", {.rsv = 1}),
      client_frame(3, "x"),
      client_frame(0xB, "x"),
      client_frame(kPing, "x", {.fin = false}),
      client_frame(kPing, std::string(126, 'p')),
      client_frame(kPing, std::string(125, 'p')),
      client_frame(kText, "hello", {.length_bytes = 2}),
      client_frame(kText, std::string(130, 'a'), {.length_bytes = 8}),
      {0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 'a'},
      client_frame(kContinuation, "x"),
      concat({client_frame(kText, "a", {.fin = false}), client_frame(kText, "b")}),
      concat({client_frame(kText, "a", {.fin = false}), client_frame(kBinary, "b")}),
      client_frame(kBinary, "b"),
      concat({client_frame(kText, "ok"), client_frame(kBinary, "b", {.fin = false}),
              client_frame(kPing, "p"), client_frame(kContinuation, "c")}),
      client_frame(kText, "\xC0\xAF"),
      client_frame(kText, "\xED\xA0\x80"),
      client_frame(kText, "\xF4\x90\x80\x80"),
      concat({client_frame(kText, "\xF0\x9F", {.fin = false}),
              client_frame(kContinuation, "\x91\x8D")}),
      concat({client_frame(kText, "\xF0\x9F", {.fin = false}), client_frame(kContinuation, "")}),
      concat({client_frame(kText, "ok", {.fin = false}),
              client_frame(kContinuation, "\xFF", {.fin = false})}),
      client_frame(kClose, ""),
      client_frame(kClose, "\x03"),
      client_frame(kClose, close_payload(1000, "bye")),
      client_frame(kClose, close_payload(1013)),
      client_frame(kClose, close_payload(1004)),
      client_frame(kClose, close_payload(2999)),
      client_frame(kClose, close_payload(4999, "app")),
      client_frame(kClose, close_payload(5000)),
      client_frame(kClose, close_payload(1000, "\xFF")),
      concat({client_frame(kClose, close_payload(1001)), client_frame(kText, "late")}),
      {0x81},                                             // a lone first byte
      {0x81, 0xFE, 0x01},                                 // inside the length
      {0xC1, 0x85},                                       // RSV, payload not there
      {0x81, 0xFE, 0x10, 0x00},                           // 4096 bytes announced, max 256
      {0x81, 0x85, 0x37, 0xfa, 0x21},                     // inside the mask key
      {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f ^ 0xFF},  // invalid byte, frame incomplete
      {0x88, 0x82, 0x37},
  };
  for (const Bytes& s : streams) expect_agreement(s);
}

// ---- random streams and mutations (deterministic)

class StreamGenerator {
 public:
  explicit StreamGenerator(std::uint32_t seed) : rng_(seed) {}

  Bytes stream() {
    in_message_ = false;
    Bytes out;
    const int frames = 1 + pick(10);
    for (int i = 0; i < frames; ++i) {
      const Bytes f = frame();
      out.insert(out.end(), f.begin(), f.end());
    }
    if (chance(50)) mutate(out);
    return out;
  }

  std::size_t message_bytes_max() {
    return message_bytes_max_for(static_cast<std::uint8_t>(rng_()));
  }

 private:
  int pick(int n) { return static_cast<int>(rng_() % static_cast<std::uint32_t>(n)); }
  bool chance(int percent) { return pick(100) < percent; }

  // Mostly a well-sequenced conversation (continuations only inside a
  // fragmented message), with the occasional misplaced or invalid opcode.
  std::uint8_t opcode() {
    static constexpr std::uint8_t kAny[] = {kText, kContinuation, kBinary, kClose, kPing, kPong, 3,
                                            7,     0xB,           0xF};
    static constexpr std::uint8_t kControl[] = {kPing, kPing, kPong, kClose};
    if (chance(6)) return kAny[pick(std::size(kAny))];
    if (chance(25)) return kControl[pick(std::size(kControl))];
    if (in_message_) return kContinuation;
    return chance(95) ? kText : kBinary;
  }

  std::string text(std::size_t n) {
    static const std::string kPieces[] = {"a",
                                          "{",
                                          "\"",
                                          " ",
                                          "\xC3\xA9",
                                          "\xE2\x82\xAC",
                                          "\xF0\x9F\x91\x8D",
                                          "\xF0\x9F",
                                          "\x91\x8D",
                                          "\xED\xA0\x80",
                                          "\xC0\xAF",
                                          "\xFF",
                                          "\x80"};
    // Most payloads are clean UTF-8; the rest may hold any piece, broken ones
    // included (a split code point, a surrogate, an overlong form, stray bytes).
    const bool clean = chance(90);
    std::string s;
    while (s.size() < n) s += kPieces[clean || chance(90) ? pick(7) : pick(std::size(kPieces))];
    return s;
  }

  std::size_t length() {
    const int r = pick(100);
    if (r < 60) return static_cast<std::size_t>(pick(12));
    if (r < 80) return 118 + static_cast<std::size_t>(pick(14));
    return 200 + static_cast<std::size_t>(pick(1200));
  }

  std::string close_body() {
    static constexpr std::uint16_t kCodes[] = {1000, 1001, 1002, 1003, 1004, 1005, 1006,
                                               1007, 1011, 1012, 1013, 1014, 1015, 1016,
                                               2999, 3000, 4999, 5000, 0,    999};
    if (chance(15)) return chance(70) ? "" : "\x03";
    return close_payload(kCodes[pick(std::size(kCodes))], text(static_cast<std::size_t>(pick(8))));
  }

  Bytes frame() {
    const std::uint8_t op = opcode();
    std::string payload = op == kClose ? close_body() : text(length());
    if (op == kPing || op == kPong) {
      payload.resize(std::min<std::size_t>(payload.size(), chance(90) ? 125 : 130));
    }
    FrameOptions o;
    o.fin = (op & 0x08) ? chance(97) : chance(60);
    if (op == kText || op == kBinary || op == kContinuation) in_message_ = !o.fin;
    o.rsv = chance(2) ? static_cast<std::uint8_t>(1 + pick(7)) : 0;
    o.masked = chance(98);
    if (chance(2)) o.length_bytes = chance(50) ? 2 : 8;
    for (auto& k : o.key) k = static_cast<std::uint8_t>(rng_());
    return client_frame(op, payload, o);
  }

  void mutate(Bytes& b) {
    if (b.empty()) return;
    const std::size_t at = static_cast<std::size_t>(rng_() % b.size());
    switch (pick(5)) {
      case 0:
        b[at] ^= static_cast<std::uint8_t>(1u << pick(8));
        break;
      case 1:
        b.resize(at);
        break;
      case 2:
        b.erase(b.begin() + static_cast<std::ptrdiff_t>(at));
        break;
      case 3:
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(rng_()));
        break;
      default: {
        const std::size_t n =
            std::min<std::size_t>(b.size() - at, 1 + static_cast<std::size_t>(pick(20)));
        b.insert(b.end(), b.begin() + static_cast<std::ptrdiff_t>(at),
                 b.begin() + static_cast<std::ptrdiff_t>(at + n));
      }
    }
  }

  std::mt19937 rng_;
  bool in_message_ = false;
};

TEST(WslayDifferential, SeededRandomStreamsAndMutations) {
  StreamGenerator gen(0x5eed);
  std::size_t messages = 0;
  std::map<std::string, int> ends;  // how our sessions ended, for coverage
  for (int round = 0; round < 5000; ++round) {
    const Bytes s = gen.stream();
    const std::size_t max = gen.message_bytes_max();
    const std::string report = compare(s.data(), s.size(), max);
    ASSERT_EQ(report, "") << "round " << round << " input: " << hex(s);
    const Verdict ours = run_ours(s.data(), s.size(), max);
    messages += ours.messages.size();
    ++ends[ours.end == End::kFailed   ? std::to_string(ours.code)
           : ours.end == End::kClosed ? "closed"
                                      : "open"];
  }
  // The comparison only means something if the streams reach every verdict
  // and often get past their first frame.
  EXPECT_GT(messages, 5000u);
  for (const char* end : {"open", "closed", "1002", "1003", "1007", "1009"}) {
    EXPECT_GT(ends[end], 50) << end;
  }
}

}  // namespace
}  // namespace rc::ws::wslay_diff
