// The pure parts of the load tools (tools/load/*.h): the client side of the
// WebSocket codec, held against the server's own codec (protocol/ws.h); the
// latency histogram, held against sorted samples; the server-message parser
// and the room model that the convergence check relies on; the chat ids,
// ack bookkeeping and stream checks; the /metrics readers; the non-blocking
// connect; and the TLS client and its handshake tally, held against the
// server's own TLS engine (core/tls.h).

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/tls.h"
#include "protocol/ws.h"
#include "tests/core/tls_test_peer.h"
#include "tools/load/chat.h"
#include "tools/load/handshakes.h"
#include "tools/load/histogram.h"
#include "tools/load/metrics_text.h"
#include "tools/load/server_messages.h"
#include "tools/load/tls_client.h"
#include "tools/load/worker.h"
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
bool parse(ServerMessageParser& p, std::string_view json, ServerMessage& m,
           unsigned what = kParseMembers) {
  std::string buf(json);
  buf.append(simdjson::SIMDJSON_PADDING, ' ');
  return p.parse(reinterpret_cast<const std::uint8_t*>(buf.data()), json.size(), buf.size(), what,
                 m);
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
      parse(p, R"({"type":"welcome","tick_ms":10,"members":[{"user_id":"m1"}]})", m, kParseKind));
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
  EXPECT_EQ(m.kind, Kind::kChat);
  ASSERT_TRUE(parse(p, R"({"type":"history","messages":[],"complete":true})", m));
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

// ---- chat

TEST(ChatIds, FormatAndParseRoundTrip) {
  char buf[kClientIdBytesMax];
  const std::size_t n = format_client_id(buf, 1763798400123456, 42);
  EXPECT_EQ(std::string_view(buf, n), "c1763798400123456-42");
  ClientId id;
  ASSERT_TRUE(parse_client_id(std::string_view(buf, n), id));
  EXPECT_EQ(id.sent_us, 1763798400123456);
  EXPECT_EQ(id.n, 42u);
  const std::size_t big = format_client_id(buf, INT64_MAX, UINT64_MAX);
  EXPECT_LE(big, kClientIdBytesMax);
  ASSERT_TRUE(parse_client_id(std::string_view(buf, big), id));
  EXPECT_EQ(id.sent_us, INT64_MAX);
  EXPECT_EQ(id.n, UINT64_MAX);
}

TEST(ChatIds, OtherFormsAreNotOurs) {
  ClientId id;
  for (const char* s : {"", "c", "c1", "c1-", "c-1", "x1-1", "c1-0", "c1-2-3", "c12a-1", "c1-1a",
                        "c99999999999999999999-1", "c9223372036854775808-1",
                        "c1-999999999999999999999", " c1-1", "c-9"}) {
    EXPECT_FALSE(parse_client_id(s, id)) << s;
  }
  EXPECT_TRUE(parse_client_id("c0-1", id));
}

// Every message gets exactly one answer, in any order; the ring grows past
// its first 16 slots without losing a flag.
TEST(ChatTracker, AnswersInAnyOrderExactlyOnce) {
  ChatTracker t;
  std::vector<std::uint64_t> sent;
  for (int i = 0; i < 40; ++i) sent.push_back(t.send());
  EXPECT_EQ(sent.front(), 1u);
  EXPECT_EQ(sent.back(), 40u);
  EXPECT_EQ(t.in_flight(), 40u);
  std::mt19937 rng(7);
  std::shuffle(sent.begin(), sent.end(), rng);
  for (std::size_t i = 0; i < 20; ++i) EXPECT_EQ(t.answer(sent[i]), AnswerCheck::kFirst);
  for (std::size_t i = 0; i < 20; ++i) EXPECT_EQ(t.answer(sent[i]), AnswerCheck::kDuplicate);
  // Sending more while older ones are still open keeps the flags in place.
  for (int i = 0; i < 30; ++i) sent.push_back(t.send());
  for (std::size_t i = 20; i < sent.size(); ++i) EXPECT_EQ(t.answer(sent[i]), AnswerCheck::kFirst);
  EXPECT_EQ(t.in_flight(), 0u);
  EXPECT_EQ(t.answer(1), AnswerCheck::kDuplicate);
  EXPECT_EQ(t.answer(70), AnswerCheck::kDuplicate);
  EXPECT_EQ(t.answer(71), AnswerCheck::kUnknown);
  EXPECT_EQ(t.answer(0), AnswerCheck::kUnknown);
}

TEST(ChatTracker, UnansweredMessagesAreBounded) {
  ChatTracker t;
  for (std::size_t i = 0; i < kChatInflightMax; ++i) {
    ASSERT_TRUE(t.can_send());
    t.send();
  }
  EXPECT_FALSE(t.can_send());
  EXPECT_EQ(t.answer(2), AnswerCheck::kFirst);  // the oldest is still open
  EXPECT_FALSE(t.can_send());
  EXPECT_EQ(t.answer(1), AnswerCheck::kFirst);
  EXPECT_TRUE(t.can_send());
  EXPECT_EQ(t.in_flight(), kChatInflightMax - 2);
}

TEST(ChatTracker, SeqsMustGrowByOne) {
  ChatTracker t;
  EXPECT_FALSE(t.started());
  t.start(10);
  EXPECT_TRUE(t.started());
  EXPECT_EQ(t.see(11, 0, 1), SeqCheck::kNext);
  EXPECT_EQ(t.see(13, 0, 2), SeqCheck::kGap);
  EXPECT_EQ(t.see(13, 0, 2), SeqCheck::kNotIncreasing);
  EXPECT_EQ(t.see(12, 0, 3), SeqCheck::kNotIncreasing);
  EXPECT_EQ(t.see(14, 1, 1), SeqCheck::kNext);
  EXPECT_EQ(t.first_seq(), 10u);
  EXPECT_EQ(t.last_seq(), 14u);
  EXPECT_EQ(t.seen(), 5u);
}

TEST(ChatTracker, EqualStreamsHashEqual) {
  const auto hash = [](std::vector<std::tuple<std::uint64_t, std::int32_t, std::uint64_t>> v) {
    ChatTracker t;
    t.start(0);
    for (auto [seq, author, n] : v) t.see(seq, author, n);
    return t.stream_hash();
  };
  const std::uint64_t a = hash({{1, 0, 1}, {2, 1, 1}, {3, 0, 2}});
  EXPECT_EQ(a, hash({{1, 0, 1}, {2, 1, 1}, {3, 0, 2}}));
  EXPECT_NE(a, hash({{1, 0, 1}, {2, 2, 1}, {3, 0, 2}}));  // another author at seq 2
  EXPECT_NE(a, hash({{1, 0, 1}, {2, 1, 2}, {3, 0, 2}}));  // another message
  EXPECT_NE(a, hash({{1, 0, 1}, {3, 0, 2}, {2, 1, 1}}));  // another order
  EXPECT_NE(a, hash({{1, 0, 1}, {2, 1, 1}}));             // shorter
}

TEST(ChatStreams, RoomsAgreeOrSayWhoDoesNot) {
  const auto st = [](std::uint32_t room, bool open, std::uint64_t last, std::uint64_t hash) {
    ChatStream s;
    s.room = room;
    s.open = open;
    s.first_seq = 5;
    s.last_seq = last;
    s.hash = hash;
    return s;
  };
  const std::vector<ChatStream> v = {
      st(0, true, 9, 1),  st(0, true, 9, 1), st(0, false, 3, 7),  // room 0: consistent
      st(1, true, 9, 1),  st(1, true, 8, 2),                      // room 1: one behind
      st(2, true, 9, 1),  st(2, true, 9, 2), st(2, true, 9, 1),   // room 2: one diverged
      st(3, false, 9, 1),                                         // room 3: nobody open
      st(9, true, 9, 1),                                          // out of range: ignored
  };
  const StreamCheck c = compare_streams(v, 4);
  EXPECT_EQ(c.rooms, 3u);
  EXPECT_EQ(c.rooms_consistent, 1u);
  EXPECT_EQ(c.clients, 7u);
  EXPECT_EQ(c.clients_behind, 1u);
  EXPECT_EQ(c.clients_diverged, 1u);
}

TEST(ServerMessages, ChatBroadcastWelcomeAndRef) {
  ServerMessageParser p;
  ServerMessage m;
  ASSERT_TRUE(
      parse(p,
            R"({"type":"chat","messages":[{"seq":18,"user_id":"m3","name":"m3","text":"hi",)"
            R"("ts":1763798400456,"client_id":"c1763798400456000-7"},)"
            R"({"seq":19,"user_id":"teacher","name":"T","text":"x","ts":1,"client_id":"c-1"},)"
            R"({"user_id":"m1","client_id":"c5-1"}]})",
            m, kParseChat));
  EXPECT_EQ(m.kind, Kind::kChat);
  ASSERT_EQ(m.chat.size(), 3u);
  EXPECT_TRUE(m.chat[0].has_seq);
  EXPECT_EQ(m.chat[0].seq, 18u);
  EXPECT_EQ(m.chat[0].author, 3);
  EXPECT_TRUE(m.chat[0].has_client_id);
  EXPECT_EQ(m.chat[0].id.sent_us, 1763798400456000);
  EXPECT_EQ(m.chat[0].id.n, 7u);
  EXPECT_EQ(m.chat[1].author, -1);
  EXPECT_FALSE(m.chat[1].has_client_id);
  EXPECT_FALSE(m.chat[2].has_seq);
  EXPECT_TRUE(m.chat[2].has_client_id);

  ASSERT_TRUE(parse(p,
                    R"({"type":"welcome","tick":3,"members":[{"user_id":"m0"}],)"
                    R"("chat":{"messages":[{"seq":4,"user_id":"m0","client_id":"c1-1"}],)"
                    R"("last_seq":4,"complete":true}})",
                    m, kParseChat));
  EXPECT_EQ(m.kind, Kind::kWelcome);
  EXPECT_TRUE(m.has_last_seq);
  EXPECT_EQ(m.last_seq, 4u);
  EXPECT_TRUE(m.chat.empty());     // history on join is not new traffic
  EXPECT_TRUE(m.members.empty());  // not asked for

  ASSERT_TRUE(parse(p, R"({"type":"error","code":"RATE_LIMITED","message":"m","ref":"c9-3"})", m,
                    kParseChat));
  EXPECT_EQ(m.code, "RATE_LIMITED");
  EXPECT_TRUE(m.has_ref);
  EXPECT_EQ(m.ref.n, 3u);
  ASSERT_TRUE(parse(p, R"({"type":"error","code":"BAD_REQUEST","ref":"mine"})", m, kParseChat));
  EXPECT_FALSE(m.has_ref);

  // Without kParseChat the messages are skipped.
  ASSERT_TRUE(parse(p, R"({"type":"chat","messages":[{"seq":1}]})", m, kParseKind));
  EXPECT_TRUE(m.chat.empty());

  EXPECT_FALSE(parse(p, R"({"type":"chat","messages":{}})", m, kParseChat));
  EXPECT_FALSE(parse(p, R"({"type":"chat","messages":[{"seq":"1"}]})", m, kParseChat));
  EXPECT_FALSE(parse(p, R"({"type":"chat","messages":[{"seq":-1}]})", m, kParseChat));
  EXPECT_FALSE(parse(p, R"({"type":"chat","messages":[{"client_id":5}]})", m, kParseChat));
  EXPECT_FALSE(parse(p, R"({"type":"welcome","chat":{"last_seq":"4"}})", m, kParseChat));
  EXPECT_FALSE(parse(p, R"({"type":"error","ref":1})", m, kParseChat));
}

TEST(ChatText, ExactLengthWithoutOuterSpaces) {
  for (std::size_t n : {1u, 2u, 5u, 6u, 39u, 40u, 41u, 2000u}) {
    const std::string t = Worker::chat_text(n);
    EXPECT_EQ(t.size(), n);
    EXPECT_NE(t.front(), ' ') << n;
    EXPECT_NE(t.back(), ' ') << n;
    for (char c : t) EXPECT_TRUE(c == ' ' || c == '.' || (c >= 'a' && c <= 'z')) << n;
  }
}

// ---- /metrics and HTTP answers

constexpr std::string_view kMetrics =
    "# TYPE rollcall_chat_rate_limited_total counter\n"
    "rollcall_chat_rate_limited_total{shard=\"0\"} 3\n"
    "rollcall_chat_rate_limited_total{shard=\"1\"} 4\n"
    "rollcall_chat_accepted_total{shard=\"0\"} 100\n"
    "rollcall_chat_accepted_total{shard=\"1\"} 20\n"
    "rollcall_log_commits_total 10\n"
    "rollcall_log_messages_committed_total 120\n"
    "rollcall_log_commit_batch_messages_bucket{le=\"1\"} 2\n"
    "rollcall_log_commit_batch_messages_bucket{le=\"16\"} 9\n"
    "rollcall_log_commit_batch_messages_bucket{le=\"+Inf\"} 10\n"
    "rollcall_log_commit_batch_messages_sum 120\n"
    "rollcall_log_commit_batch_messages_count 10\n"
    "rollcall_log_commit_seconds_bucket{le=\"0.049999999999999996\"} 10\n"
    "rollcall_log_commit_seconds_sum 0.0125\n"
    "rollcall_log_commit_seconds_count 10\n"
    "rollcall_tick_flush_seconds_bucket{shard=\"0\",le=\"0.001\"} 5\n"
    "rollcall_tick_flush_seconds_bucket{shard=\"1\",le=\"0.001\"} 6\n";

TEST(Metrics, ChatCountersAndHistograms) {
  const ChatServerSample s = parse_chat_metrics(kMetrics);
  EXPECT_TRUE(s.valid());
  EXPECT_EQ(s.commits, 10);
  EXPECT_EQ(s.records, 120);
  EXPECT_EQ(s.rate_limited, 7);
  EXPECT_EQ(s.accepted, 120);
  EXPECT_EQ(s.broadcast, -1);  // absent
  EXPECT_EQ(s.commit_seconds_count, 10);
  EXPECT_DOUBLE_EQ(s.commit_seconds_sum, 0.0125);
  ASSERT_EQ(s.batch.size(), 3u);
  EXPECT_EQ(s.batch[0].le, "1");
  EXPECT_EQ(s.batch[1].count, 9);
  EXPECT_EQ(s.batch[2].le, "+Inf");
  // Per-shard series of one bucket add up.
  const std::vector<PromBucket> tick = prometheus_buckets(kMetrics, "rollcall_tick_flush_seconds");
  ASSERT_EQ(tick.size(), 1u);
  EXPECT_EQ(tick[0].count, 11);
  EXPECT_TRUE(prometheus_buckets(kMetrics, "rollcall_nothing").empty());
  EXPECT_FALSE(parse_chat_metrics("").valid());
}

TEST(Metrics, WindowDeltaAndQuantiles) {
  const std::vector<PromBucket> before = {{"1", 2}, {"16", 9}, {"+Inf", 10}};
  const std::vector<PromBucket> after = {{"1", 2}, {"16", 19}, {"+Inf", 110}, {"32", 1}};
  const std::vector<PromBucket> d = bucket_delta(before, after);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].count, 0);
  EXPECT_EQ(d[1].count, 10);
  EXPECT_EQ(d[2].count, 100);
  EXPECT_EQ(bucket_quantile(d, 0.05), "16");
  EXPECT_EQ(bucket_quantile(d, 0.10), "16");
  EXPECT_EQ(bucket_quantile(d, 0.5), "+Inf");
  EXPECT_EQ(bucket_quantile({}, 0.5), "");
  EXPECT_EQ(le_short("0.049999999999999996"), "0.05");
  EXPECT_EQ(le_short("1024"), "1024");
  EXPECT_EQ(le_short("+Inf"), "+Inf");
  EXPECT_DOUBLE_EQ(prometheus_double(kMetrics, "rollcall_log_commit_seconds_sum"), 0.0125);
  EXPECT_DOUBLE_EQ(prometheus_double(kMetrics, "rollcall_log_commit_seconds"), -1);
}

TEST(Metrics, LinesAndSampleValues) {
  constexpr std::string_view kText = "a 1\n\nb{x=\"y\"} -20\nlast";
  std::size_t pos = 0;
  std::vector<std::string> lines;
  while (pos < kText.size()) lines.emplace_back(next_line(kText, pos));
  EXPECT_EQ(lines, (std::vector<std::string>{"a 1", "", "b{x=\"y\"} -20", "last"}));
  std::int64_t v = 7;
  EXPECT_TRUE(parse_sample_int(" 42", v));
  EXPECT_EQ(v, 42);
  EXPECT_TRUE(parse_sample_int("-20\n", v));
  EXPECT_EQ(v, -20);
  EXPECT_FALSE(parse_sample_int("NaN", v));
  EXPECT_FALSE(parse_sample_int("", v));
  EXPECT_EQ(v, -20);  // left alone on failure
  // A labelled sample without a value and the family's other names do not count.
  EXPECT_EQ(prometheus_sum("x_total{a=\"1\"} 2\nx_total{a=\"2\"}\nx_total_more 5\n", "x_total"), 2);
}

TEST(HttpAnswer, CompleteOnceTheBodyIsThere) {
  const std::string ok =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 15\r\n\r\n"
      "{\"status\":\"ok\"}";
  HttpAnswer a = parse_http_answer(ok);
  EXPECT_TRUE(a.complete);
  EXPECT_EQ(a.status, 200);
  a = parse_http_answer(std::string_view(ok).substr(0, ok.size() - 1));
  EXPECT_FALSE(a.complete);
  EXPECT_EQ(a.status, 200);
  EXPECT_FALSE(parse_http_answer("HTTP/1.1 200 OK\r\n").complete);
  a = parse_http_answer("HTTP/1.1 503 Service Unavailable\r\n\r\n");
  EXPECT_TRUE(a.complete);
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(parse_http_answer("garbage\r\n\r\n").status, 0);
}

// ---- TLS client against the server's engine (core/tls.h), over a socket pair

// The server end of a socket pair, driven by hand: what it receives goes
// into the Session, the plaintext into `plain`, the Session's output back out.
struct ServerPump {
  int fd;
  tls::Session& session;
  std::string plain;
  bool failed = false;

  void step() {
    std::uint8_t buf[32768];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
      if (session.feed(buf, static_cast<std::size_t>(n)) == tls::Session::Result::kError) {
        failed = true;
        return;
      }
      std::size_t got = 0;
      while (session.read_plain(buf, sizeof buf, got) == tls::Session::Result::kOk) {
        plain.append(reinterpret_cast<const char*>(buf), got);
      }
    }
    const auto out = session.pending_output();
    if (out.empty()) return;
    n = ::send(fd, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) session.consumed(static_cast<std::size_t>(n));
  }
};

class TlsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv_), 0);
    pem_ = tls::test_peer::make_self_signed();
    auto ctx = tls::ServerContext::from_pem(pem_.cert, pem_.key);
    ASSERT_TRUE(ctx.is_ok());
    server_ctx_ = std::move(*ctx);
    thread_ = std::make_unique<tls::ThreadContext>(*server_ctx_);
    session_ = std::make_unique<tls::Session>(*thread_);
    pump_ = std::make_unique<ServerPump>(ServerPump{sv_[1], *session_, {}});
    ASSERT_TRUE(config_.ok());
  }
  void TearDown() override {
    ::close(sv_[0]);
    ::close(sv_[1]);
  }

  bool handshake(TlsConn& c) {
    for (int i = 0; i < 200; ++i) {
      const TlsConn::Io io = c.handshake();
      if (io == TlsConn::Io::kOk) return true;
      if (io == TlsConn::Io::kError) return false;
      pump_->step();
    }
    return false;
  }

  int sv_[2] = {-1, -1};
  tls::test_peer::Pem pem_;
  std::unique_ptr<tls::ServerContext> server_ctx_;
  std::unique_ptr<tls::ThreadContext> thread_;
  std::unique_ptr<tls::Session> session_;
  std::unique_ptr<ServerPump> pump_;
  TlsClientConfig config_;
};

TEST_F(TlsClientTest, HandshakeNamesSuiteAndKey) {
  TlsConn c(config_, sv_[0]);
  ASSERT_TRUE(handshake(c)) << c.error();
  EXPECT_TRUE(c.handshake_done());
  EXPECT_TRUE(session_->handshake_done());
  EXPECT_EQ(c.ciphersuite(), "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256");
  EXPECT_EQ(c.ciphersuite(), session_->ciphersuite());
  EXPECT_EQ(c.peer_key(), "EC secp256r1");
  EXPECT_TRUE(c.error().empty());
}

// A megabyte through a socket buffer that fills: writes that must be
// repeated (kWantWrite) resume at the same byte, and nothing is lost or
// repeated either way.
TEST_F(TlsClientTest, BulkBothWaysThroughAFullSocket) {
  TlsConn c(config_, sv_[0]);
  ASSERT_TRUE(handshake(c));
  std::string up(1 << 20, '\0');
  for (std::size_t i = 0; i < up.size(); ++i) up[i] = static_cast<char>('a' + (i * 7) % 26);
  std::size_t off = 0;
  int wants = 0;
  for (int i = 0; i < 100000 && off < up.size(); ++i) {
    std::size_t done = 0;
    const TlsConn::Io io =
        c.write(reinterpret_cast<const std::uint8_t*>(up.data()) + off, up.size() - off, done);
    ASSERT_NE(io, TlsConn::Io::kError) << c.error();
    EXPECT_LE(done, kTlsRecordPlainBytes);
    off += done;
    if (io != TlsConn::Io::kOk) {
      ++wants;
      pump_->step();
    }
  }
  ASSERT_EQ(off, up.size());
  EXPECT_GT(wants, 0) << "the socket buffer never filled: the retry path was not taken";
  for (int i = 0; i < 1000 && pump_->plain.size() < up.size(); ++i) pump_->step();
  ASSERT_FALSE(pump_->failed);
  EXPECT_TRUE(pump_->plain == up);

  std::string down(300000, '\0');
  for (std::size_t i = 0; i < down.size(); ++i) down[i] = static_cast<char>('A' + i % 26);
  ASSERT_EQ(session_->write_plain(reinterpret_cast<const std::uint8_t*>(down.data()), down.size()),
            tls::Session::Result::kOk);
  std::string got_all;
  std::vector<std::uint8_t> buf(kTlsRecordPlainBytes);
  for (int i = 0; i < 10000 && got_all.size() < down.size(); ++i) {
    pump_->step();
    std::size_t got = 0;
    const TlsConn::Io io = c.read(buf.data(), buf.size(), got);
    ASSERT_NE(io, TlsConn::Io::kError) << c.error();
    got_all.append(reinterpret_cast<const char*>(buf.data()), got);
  }
  EXPECT_TRUE(got_all == down);
  EXPECT_EQ(c.buffered(), 0u);

  session_->close_notify();
  pump_->step();
  std::size_t got = 0;
  EXPECT_EQ(c.read(buf.data(), buf.size(), got), TlsConn::Io::kClosed);
}

// The tally keeps the first handshake's suite and key and the first failure,
// also when per-worker tallies are merged.
TEST_F(TlsClientTest, TallyRecordsAndMergesHandshakes) {
  TlsConn c(config_, sv_[0]);
  const std::int64_t start = mono_ns();
  ASSERT_TRUE(handshake(c));
  TlsTally a;
  a.done(c, start);
  a.done(c, mono_ns() + 1'000'000'000);  // a start in the future counts as 0 µs
  EXPECT_EQ(a.handshake_us.count(), 2u);
  EXPECT_EQ(a.suite, "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256");
  EXPECT_EQ(a.peer_key, "EC secp256r1");
  EXPECT_EQ(a.errors, 0u);

  // A failure with a real error: a plaintext answer to the ClientHello.
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
  TlsConn bad(config_, pair[0]);
  EXPECT_EQ(bad.handshake(), TlsConn::Io::kWantRead);
  const std::string answer = "HTTP/1.1 400 Bad Request\r\n\r\n";
  ASSERT_EQ(::send(pair[1], answer.data(), answer.size(), 0), static_cast<ssize_t>(answer.size()));
  EXPECT_EQ(bad.handshake(), TlsConn::Io::kError);
  TlsTally b;
  b.failed(bad);
  EXPECT_EQ(b.errors, 1u);
  EXPECT_EQ(b.first_error, bad.error());
  EXPECT_FALSE(b.first_error.empty());
  b.first_error = "first";
  b.failed(bad);
  EXPECT_EQ(b.errors, 2u);
  EXPECT_EQ(b.first_error, "first");
  ::close(pair[0]);
  ::close(pair[1]);

  TlsTally sum;
  sum.merge(b);
  sum.merge(a);
  EXPECT_EQ(sum.errors, 2u);
  EXPECT_EQ(sum.handshake_us.count(), 2u);
  EXPECT_EQ(sum.suite, a.suite);
  EXPECT_EQ(sum.peer_key, a.peer_key);
  EXPECT_EQ(sum.first_error, "first");
}

TEST_F(TlsClientTest, PlaintextPeerFailsTheHandshake) {
  TlsConn c(config_, sv_[0]);
  EXPECT_EQ(c.handshake(), TlsConn::Io::kWantRead);  // the ClientHello went out
  const std::string answer = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(sv_[1], answer.data(), answer.size(), 0), static_cast<ssize_t>(answer.size()));
  EXPECT_EQ(c.handshake(), TlsConn::Io::kError);
  EXPECT_FALSE(c.error().empty());
  std::size_t done = 0;
  const std::uint8_t byte = 'x';
  EXPECT_EQ(c.write(&byte, 1, done), TlsConn::Io::kError);
}

// A listening socket on 127.0.0.1 and a port of the kernel's choice, written
// to addr; -1 on failure.
int loopback_listener(sockaddr_in& addr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  addr = sockaddr_in{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 1) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// flush_bytes over a plain socket pair: it stops at a full socket, resumes
// where it stopped, and fails once the peer is gone.
TEST(Net, FlushBytesResumesAndFails) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  std::vector<std::uint8_t> data(4 << 20);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 31);
  std::size_t off = 0;
  std::vector<std::uint8_t> got;
  std::uint8_t buf[65536];
  int blocked = 0;
  Flush f = Flush::kBlocked;
  for (int i = 0; i < 100000 && f == Flush::kBlocked; ++i) {
    f = flush_bytes(sv[0], nullptr, data.data(), data.size(), off);
    if (f == Flush::kBlocked) ++blocked;
    ssize_t n;
    while ((n = ::recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)) > 0)
      got.insert(got.end(), buf, buf + n);
  }
  EXPECT_EQ(f, Flush::kDone);
  EXPECT_EQ(off, data.size());
  EXPECT_GT(blocked, 0) << "the socket never filled";
  ssize_t n;
  while ((n = ::recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)) > 0)
    got.insert(got.end(), buf, buf + n);
  EXPECT_TRUE(got == data);
  ::close(sv[1]);
  off = 0;
  EXPECT_EQ(flush_bytes(sv[0], nullptr, data.data(), data.size(), off), Flush::kFailed);
  ::close(sv[0]);
}

// start_tcp_connect: a loopback connect that epoll reports, tagged; and a
// failed step leaves no socket behind.
TEST(Net, StartTcpConnectTagsTheSocketInEpoll) {
  sockaddr_in addr{};
  const int listener = loopback_listener(addr);
  ASSERT_GE(listener, 0);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  const int fd = start_tcp_connect(addr.sin_addr, addr.sin_addr, ntohs(addr.sin_port), ep, 7);
  ASSERT_GE(fd, 0);
  epoll_event ev{};
  ASSERT_EQ(::epoll_wait(ep, &ev, 1, 5000), 1);
  EXPECT_EQ(ev.data.u32, 7u);
  EXPECT_NE(ev.events & EPOLLOUT, 0u);
  EXPECT_FALSE(tcp_connect_failed(fd, ev.events));
  const int accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  EXPECT_GE(accepted, 0);
  int nodelay = 0;
  socklen_t nodelay_len = sizeof nodelay;
  ASSERT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &nodelay_len), 0);
  EXPECT_NE(nodelay, 0);
  if (accepted >= 0) ::close(accepted);
  ::close(fd);  // and so out of the epoll set
  // Nobody listens any more: epoll reports the refused connect.
  ::close(listener);
  const int refused = start_tcp_connect(addr.sin_addr, addr.sin_addr, ntohs(addr.sin_port), ep, 9);
  ASSERT_GE(refused, 0);
  ASSERT_EQ(::epoll_wait(ep, &ev, 1, 5000), 1);
  EXPECT_EQ(ev.data.u32, 9u);
  EXPECT_TRUE(tcp_connect_failed(refused, ev.events));
  ::close(refused);
  // No epoll instance: the socket is closed again and -1 comes back.
  EXPECT_EQ(start_tcp_connect(addr.sin_addr, addr.sin_addr, ntohs(addr.sin_port), -1, 8), -1);
  ::close(ep);
}

// tls_http_get against a one-shot TLS server on a loopback port.
TEST(TlsHttpGet, FetchesAWholeAnswer) {
  const tls::test_peer::Pem pem = tls::test_peer::make_self_signed();
  auto ctx = tls::ServerContext::from_pem(pem.cert, pem.key);
  ASSERT_TRUE(ctx.is_ok());
  sockaddr_in addr{};
  const int listener = loopback_listener(addr);
  ASSERT_GE(listener, 0);
  std::string request;
  std::thread server([&] {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    tls::ThreadContext thread(**ctx);
    tls::Session session(thread);
    ServerPump pump{fd, session, {}};
    const std::int64_t deadline = mono_ns() + 5'000'000'000;
    while (pump.plain.find("\r\n\r\n") == std::string::npos && !pump.failed &&
           mono_ns() < deadline) {
      pump.step();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    request = pump.plain;
    const std::string body = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    session.write_plain(reinterpret_cast<const std::uint8_t*>(body.data()), body.size());
    session.close_notify();
    while (!session.pending_output().empty() && mono_ns() < deadline) pump.step();
    ::close(fd);
  });
  TlsClientConfig config;
  const std::string answer =
      tls_http_get(config, addr.sin_addr, ntohs(addr.sin_port), "/metrics", 5000);
  server.join();
  ::close(listener);
  EXPECT_EQ(request.rfind("GET /metrics HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_EQ(answer, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
}

}  // namespace
}  // namespace rc::load
