// The pure parts of the load tools (tools/load/*.h): the client side of the
// WebSocket codec, held against the server's own codec (protocol/ws.h); the
// latency histogram, held against sorted samples; the server-message parser
// and the room model that the convergence check relies on.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "protocol/ws.h"
#include "tools/load/histogram.h"
#include "tools/load/server_messages.h"
#include "tools/load/ws_client.h"

namespace rc::load {
namespace {

std::string b64(std::string_view s) {
  std::string out;
  base64_append(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), out);
  return out;
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(b64(""), "");
  EXPECT_EQ(b64("f"), "Zg==");
  EXPECT_EQ(b64("fo"), "Zm8=");
  EXPECT_EQ(b64("foo"), "Zm9v");
  EXPECT_EQ(b64("foob"), "Zm9vYg==");
  EXPECT_EQ(b64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(b64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(make_client_key(1, 2).size(), 24u);
}

TEST(Upgrade, RequestHasTheRfc6455Headers) {
  const std::string r = upgrade_request("127.0.0.1:8080", "/ws/rooms/a?user_id=m1", "KEY");
  EXPECT_EQ(r.rfind("GET /ws/rooms/a?user_id=m1 HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(r.find("\r\nHost: 127.0.0.1:8080\r\n"), std::string::npos);
  EXPECT_NE(r.find("\r\nUpgrade: websocket\r\n"), std::string::npos);
  EXPECT_NE(r.find("\r\nConnection: Upgrade\r\n"), std::string::npos);
  EXPECT_NE(r.find("\r\nSec-WebSocket-Key: KEY\r\n"), std::string::npos);
  EXPECT_NE(r.find("\r\nSec-WebSocket-Version: 13\r\n\r\n"), std::string::npos);
}

TEST(Upgrade, AnswerChecksStatusAndAcceptKey) {
  const std::string key = make_client_key(0x1234, 0x5678);
  const std::string accept = ws::accept_key(key);
  const std::string ok =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
      "sec-websocket-accept:  " +
      accept + "\r\n\r\n";
  Handshake h = check_upgrade_answer(ok + "\x81\x00", accept);
  EXPECT_EQ(h.status, HandshakeStatus::kOk);
  EXPECT_EQ(h.head_bytes, ok.size());
  EXPECT_EQ(h.http_status, 101);

  EXPECT_EQ(check_upgrade_answer(ok.substr(0, ok.size() - 1), accept).status,
            HandshakeStatus::kIncomplete);
  EXPECT_EQ(check_upgrade_answer(ok, ws::accept_key("other")).status, HandshakeStatus::kError);

  h = check_upgrade_answer("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n{}",
                           accept);
  EXPECT_EQ(h.status, HandshakeStatus::kError);
  EXPECT_EQ(h.http_status, 503);
  EXPECT_EQ(check_upgrade_answer("garbage\r\n\r\n", accept).status, HandshakeStatus::kError);
  EXPECT_EQ(check_upgrade_answer(std::string(9000, 'a'), accept).status, HandshakeStatus::kError);
}

// Our masked frames, decoded by the server's decoder, give back the payload.
TEST(Frames, MaskedFramesDecodeWithTheServerCodec) {
  for (std::size_t n : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 70000u}) {
    std::string payload(n, '\0');
    for (std::size_t i = 0; i < n; ++i) payload[i] = static_cast<char>('a' + i % 26);
    std::string wire;
    append_masked_frame(wire, kText, payload, 0xA1B2C3D4u + static_cast<std::uint32_t>(n));
    std::vector<std::uint8_t> bytes(wire.begin(), wire.end());
    const ws::Decoded d = ws::decode_frame(bytes.data(), bytes.size(), 1 << 20);
    ASSERT_EQ(d.status, ws::DecodeStatus::kFrame) << n;
    EXPECT_EQ(d.consumed, bytes.size());
    EXPECT_TRUE(d.frame.fin);
    EXPECT_EQ(d.frame.opcode, ws::kText);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(d.frame.payload), d.frame.payload_bytes), payload)
        << n;
  }
  std::string close;
  append_masked_frame(close, kClose, close_payload(1000, "bye"), 7);
  std::vector<std::uint8_t> bytes(close.begin(), close.end());
  const ws::Decoded d = ws::decode_frame(bytes.data(), bytes.size(), 1 << 20);
  ASSERT_EQ(d.status, ws::DecodeStatus::kFrame);
  EXPECT_EQ(d.frame.opcode, ws::kClose);
  ASSERT_EQ(d.frame.payload_bytes, 5u);
  EXPECT_EQ(d.frame.payload[0], 0x03);
  EXPECT_EQ(d.frame.payload[1], 0xE8);
}

// Frames with the server codec's headers parse, whole or not at all.
TEST(Frames, ServerFramesParseAndPrefixesAreIncomplete) {
  for (std::size_t n : {0u, 5u, 125u, 126u, 65535u, 65536u}) {
    std::vector<std::uint8_t> f(ws::server_header_bytes(n) + n, 'x');
    const std::size_t h = ws::write_server_header(f.data(), ws::kText, n);
    ASSERT_EQ(h + n, f.size());
    const ServerFrame sf = parse_server_frame(f.data(), f.size(), 1 << 20);
    ASSERT_EQ(sf.status, FrameStatus::kFrame) << n;
    EXPECT_TRUE(sf.fin);
    EXPECT_EQ(sf.opcode, kText);
    EXPECT_EQ(sf.payload, f.data() + h);
    EXPECT_EQ(sf.payload_bytes, n);
    EXPECT_EQ(sf.frame_bytes, f.size());
    for (std::size_t cut = 0; cut < f.size(); cut += std::max<std::size_t>(1, f.size() / 7)) {
      EXPECT_EQ(parse_server_frame(f.data(), cut, 1 << 20).status, FrameStatus::kIncomplete)
          << n << " " << cut;
    }
  }
}

TEST(Frames, ServerFrameErrors) {
  auto status = [](std::vector<std::uint8_t> f, std::size_t max = 1 << 20) {
    return parse_server_frame(f.data(), f.size(), max).status;
  };
  EXPECT_EQ(status({0x81, 0x80, 1, 2, 3, 4}), FrameStatus::kError);  // masked
  EXPECT_EQ(status({0xC1, 0x00}), FrameStatus::kError);              // RSV1
  EXPECT_EQ(status({0x83, 0x00}), FrameStatus::kError);              // reserved opcode
  EXPECT_EQ(status({0x09, 0x00}), FrameStatus::kError);              // fragmented ping
  EXPECT_EQ(status({0x89, 0x7E, 0x00, 0x7E}), FrameStatus::kError);  // ping over 125 bytes
  EXPECT_EQ(status({0x81, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1}), FrameStatus::kError);   // top bit
  EXPECT_EQ(status({0x81, 0x05, 'a', 'b', 'c', 'd', 'e'}, 4), FrameStatus::kError);  // over max
  EXPECT_EQ(status({0x01, 0x01, 'a'}), FrameStatus::kFrame);  // a first fragment is fine
}

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (std::uint64_t v = 0; v < 64; ++v) h.add(v);
  EXPECT_EQ(h.count(), 64u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 63u);
  EXPECT_EQ(h.percentile(0.5), 31u);
  EXPECT_EQ(h.percentile(1.0), 63u);
  EXPECT_DOUBLE_EQ(h.mean(), 31.5);
}

TEST(Histogram, BucketsCoverEveryValueInOrder) {
  std::size_t last = 0;
  for (std::uint64_t v = 0; v < (1u << 20); v += 1 + v / 97) {
    const std::size_t i = Histogram::index_of(v);
    EXPECT_GE(i, last);
    EXPECT_GE(Histogram::upper_bound_of(i), v);
    EXPECT_LE(Histogram::upper_bound_of(i) - v, v / 64 + 1);
    if (i > 0) {
      EXPECT_LT(Histogram::upper_bound_of(i - 1), v);
    }
    last = i;
  }
  EXPECT_EQ(Histogram::index_of(~0ull), Histogram::kBuckets - 1);
}

// Percentiles are within the histogram's relative error of the exact ones,
// and merging two halves gives the histogram of the whole.
TEST(Histogram, PercentilesMatchSortedSamples) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(8.0, 1.5);
  std::vector<std::uint64_t> v;
  Histogram a, b, all;
  for (int i = 0; i < 100000; ++i) {
    const auto x = static_cast<std::uint64_t>(dist(rng));
    v.push_back(x);
    (i % 2 ? a : b).add(x);
    all.add(x);
  }
  a.merge(b);
  std::sort(v.begin(), v.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const std::uint64_t exact = v[static_cast<std::size_t>(q * v.size() + 0.5) - 1];
    const std::uint64_t got = all.percentile(q);
    EXPECT_GE(got, exact) << q;
    EXPECT_LE(static_cast<double>(got), static_cast<double>(exact) * (1 + 1.0 / 64) + 1) << q;
    EXPECT_EQ(a.percentile(q), got);
  }
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), v.back());
  EXPECT_EQ(a.min(), v.front());
}

TEST(Ids, MemberIndexAndStamp) {
  EXPECT_EQ(parse_member_index("m0"), 0);
  EXPECT_EQ(parse_member_index("m999"), 999);
  EXPECT_EQ(parse_member_index("m"), -1);
  EXPECT_EQ(parse_member_index("u1"), -1);
  EXPECT_EQ(parse_member_index("m1x"), -1);
  EXPECT_EQ(parse_member_index("m99999999999"), -1);
  EXPECT_EQ(parse_stamp(""), 0);
  EXPECT_EQ(parse_stamp("t1763798400123456"), 1763798400123456);
  EXPECT_EQ(parse_stamp("t"), -1);
  EXPECT_EQ(parse_stamp("hello"), -1);
  EXPECT_EQ(parse_stamp("t12a"), -1);
  EXPECT_EQ(parse_stamp("t99999999999999999999"), -1);
}

// simdjson needs padding after the text.
bool parse(ServerMessageParser& p, std::string_view json, ServerMessage& m, bool details = true) {
  std::string buf(json);
  buf.append(simdjson::SIMDJSON_PADDING, ' ');
  return p.parse(reinterpret_cast<const std::uint8_t*>(buf.data()), json.size(), buf.size(),
                 details, m);
}

TEST(ServerMessages, Welcome) {
  ServerMessageParser p;
  ServerMessage m;
  ASSERT_TRUE(parse(
      p,
      R"({"type":"welcome","room":"r","user_id":"m1","tick_ms":50,"tick":7,)"
      R"("members":[{"user_id":"m1","name":"m1","x":0.5,"status_text":"","hand":false},)"
      R"({"user_id":"teacher","x":0},{"user_id":"m3","x":1,"status_text":"t42"}],"chat":{"messages":[]}})",
      m));
  EXPECT_EQ(m.kind, Kind::kWelcome);
  EXPECT_EQ(m.tick_ms, 50);
  EXPECT_TRUE(m.has_tick);
  EXPECT_EQ(m.tick, 7u);
  ASSERT_EQ(m.members.size(), 2u);
  EXPECT_EQ(m.members[0].index, 1);
  EXPECT_DOUBLE_EQ(m.members[0].x, 0.5);
  EXPECT_TRUE(m.members[0].has_text);
  EXPECT_EQ(m.members[0].stamp, 0);
  EXPECT_EQ(m.members[1].index, 3);
  EXPECT_EQ(m.members[1].stamp, 42);
  EXPECT_EQ(m.foreign, 1u);

  ASSERT_TRUE(
      parse(p, R"({"type":"welcome","tick_ms":10,"members":[{"user_id":"m1"}]})", m, false));
  EXPECT_EQ(m.tick_ms, 10);
  EXPECT_TRUE(m.members.empty());
}

TEST(ServerMessages, DeltaSyncAndOthers) {
  ServerMessageParser p;
  ServerMessage m;
  ASSERT_TRUE(parse(
      p,
      R"({"type":"delta","tick":12,"joined":[{"user_id":"m4","x":0,"status_text":""}],)"
      R"("updated":[{"user_id":"m2","x":0.25},{"user_id":"m5","status_text":"t9"}],"left":["m7","zz"]})",
      m));
  EXPECT_EQ(m.kind, Kind::kDelta);
  EXPECT_EQ(m.tick, 12u);
  ASSERT_EQ(m.joined.size(), 1u);
  EXPECT_EQ(m.joined[0].index, 4);
  ASSERT_EQ(m.updated.size(), 2u);
  EXPECT_TRUE(m.updated[0].has_x);
  EXPECT_FALSE(m.updated[0].has_text);
  EXPECT_FALSE(m.updated[1].has_x);
  EXPECT_EQ(m.updated[1].stamp, 9);
  ASSERT_EQ(m.left.size(), 1u);
  EXPECT_EQ(m.left[0], 7);
  EXPECT_EQ(m.foreign, 1u);

  ASSERT_TRUE(parse(p, R"({"type":"sync","tick":13,"members":[]})", m));
  EXPECT_EQ(m.kind, Kind::kSync);
  EXPECT_TRUE(m.members.empty());
  ASSERT_TRUE(parse(p, R"({"type":"error","code":"BAD_REQUEST","message":"x"})", m));
  EXPECT_EQ(m.kind, Kind::kError);
  EXPECT_EQ(m.code, "BAD_REQUEST");
  ASSERT_TRUE(parse(p, R"({"type":"queued","position":3})", m));
  EXPECT_EQ(m.kind, Kind::kQueued);
  EXPECT_EQ(m.position, 3u);
  ASSERT_TRUE(parse(p, R"({"type":"chat","messages":[]})", m));
  EXPECT_EQ(m.kind, Kind::kOther);

  EXPECT_FALSE(parse(p, "not json", m));
  EXPECT_FALSE(parse(p, R"([1,2])", m));
  EXPECT_FALSE(parse(p, R"({"tick":1})", m));
  EXPECT_FALSE(parse(p, R"({"type":"delta","updated":[{"x":1}]})", m));  // no user_id
  EXPECT_FALSE(parse(p, R"({"type":"delta","updated":[{"user_id":"m1","x":"a"}]})", m));
}

MemberFields fields(std::int32_t i, bool has_x, double x, bool has_text, std::int64_t stamp) {
  MemberFields f;
  f.index = i;
  f.has_x = has_x;
  f.x = x;
  f.has_text = has_text;
  f.stamp = stamp;
  return f;
}

TEST(RoomModel, AppliesDeltasLikeTheProtocolSays) {
  RoomModel a(4);
  a.replace({fields(0, true, 0.1, true, 0), fields(2, true, 0.2, true, 5)});
  EXPECT_TRUE(a.present(0));
  EXPECT_FALSE(a.present(1));
  EXPECT_EQ(a.stamp(2), 5);

  EXPECT_TRUE(a.upsert(fields(1, true, 0.3, true, 0)));  // joined
  EXPECT_TRUE(a.upsert(fields(1, true, 0.3, true, 0)));  // joined twice: an upsert
  EXPECT_TRUE(a.update(fields(2, false, 0, true, 6)));   // partial: x kept
  EXPECT_DOUBLE_EQ(a.x(2), 0.2);
  EXPECT_EQ(a.stamp(2), 6);
  EXPECT_FALSE(a.update(fields(3, true, 0.9, false, 0)));  // never joined: reported
  EXPECT_TRUE(a.remove(3));
  EXPECT_FALSE(a.remove(3));
  EXPECT_FALSE(a.upsert(fields(9, true, 0, true, 0)));  // out of range

  RoomModel b(4);
  b.replace({fields(0, true, 0.1, true, 0), fields(1, true, 0.3, true, 0),
             fields(2, true, 0.2, true, 6)});
  EXPECT_EQ(a.differences(b), 0u);
  b.update(fields(2, true, 0.7, false, 0));
  EXPECT_EQ(a.differences(b), 1u);
  b.remove(0);
  EXPECT_EQ(a.differences(b), 2u);
}

}  // namespace
}  // namespace rc::load
