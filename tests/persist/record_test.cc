#include "persist/record.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace rc::persist {
namespace {

const std::string kKey(32, 'k');

ChatMessage sample() {
  ChatMessage m;
  m.seq = 17;
  m.ts_ms = 1763798400123;
  m.user_id = "u7";
  m.name = "Bo \xc3\xa9";
  m.text = std::string("hi\0there", 8);
  m.client_id = "c-9";
  return m;
}

void expect_same_body(const ChatMessage& a, const ChatMessage& b) {
  EXPECT_EQ(a.user_id, b.user_id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.client_id, b.client_id);
}

// ---- room ids and keys

TEST(Record, RoomIdCharset) {
  EXPECT_TRUE(valid_room_id("physics-101"));
  EXPECT_TRUE(valid_room_id("A_z-09"));
  EXPECT_TRUE(valid_room_id(std::string(64, 'r')));
  EXPECT_FALSE(valid_room_id(""));
  EXPECT_FALSE(valid_room_id(std::string(65, 'r')));
  EXPECT_FALSE(valid_room_id("a b"));
  EXPECT_FALSE(valid_room_id("a.b"));
  EXPECT_FALSE(valid_room_id("a%20"));
  EXPECT_FALSE(valid_room_id(std::string("a\0b", 3)));
  EXPECT_FALSE(valid_room_id("\x01keycheck"));
}

TEST(Record, KeyLayoutIsRoomSeparatorBigEndianSeq) {
  const RecordKey key("ab", 0x0102030405060708ull);
  EXPECT_EQ(key.view(), std::string_view("ab\0\x01\x02\x03\x04\x05\x06\x07\x08", 11));
  const auto parsed = parse_record_key(key.view());
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->room, "ab");
  EXPECT_EQ(parsed->seq, 0x0102030405060708ull);
}

TEST(Record, KeysOfOneRoomAreOneRangeInSeqOrder) {
  // Rooms that extend one another and seqs whose bytes differ in every
  // position: sorting the byte strings must group by room, then by seq.
  const std::vector<std::string> rooms = {"a", "a-b", "aB", "ab", "ab-x", "b", "Z", "0", "_"};
  const std::vector<std::uint64_t> seqs = {1, 2, 255, 256, 65535, 65536, 1ull << 40, ~0ull};
  std::vector<std::string> keys;
  for (const auto& r : rooms) {
    for (auto s : seqs) keys.emplace_back(RecordKey(r, s).view());
  }
  std::sort(keys.begin(), keys.end());
  std::string last_room;
  std::uint64_t last_seq = 0;
  std::vector<std::string> room_order;
  for (const auto& k : keys) {
    const auto p = parse_record_key(k);
    ASSERT_TRUE(p.has_value());
    if (p->room != last_room) {
      // A room that has been left must never come back.
      EXPECT_EQ(std::count(room_order.begin(), room_order.end(), std::string(p->room)), 0);
      room_order.emplace_back(p->room);
      last_room = std::string(p->room);
    } else {
      EXPECT_GT(p->seq, last_seq);
    }
    last_seq = p->seq;
  }
  EXPECT_EQ(room_order.size(), rooms.size());
  // The end key of a room sorts above its records and below the next room.
  for (const auto& r : rooms) {
    const std::string end = room_end_key(r);
    for (const auto& k : keys) {
      const auto p = parse_record_key(k);
      if (p->room == r) {
        EXPECT_LT(k, end);
      } else if (std::string(p->room) > r) {
        EXPECT_GT(k, end) << r << " vs " << p->room;
      }
    }
  }
}

TEST(Record, MetaKeysSortBeforeRoomsAndAreNotRecordKeys) {
  EXPECT_LT(std::string(kKeyCheckKey), std::string(RecordKey("-", 1).view()));
  EXPECT_LT(std::string(kKeyCheckKey), std::string(RecordKey("0", 1).view()));
  EXPECT_FALSE(parse_record_key(kKeyCheckKey).has_value());
}

TEST(Record, ParseRejectsMalformedKeys) {
  EXPECT_FALSE(parse_record_key("").has_value());
  EXPECT_FALSE(parse_record_key(std::string_view("\0\0\0\0\0\0\0\0\0", 9)).has_value());
  EXPECT_FALSE(parse_record_key(std::string_view("ab\x01\0\0\0\0\0\0\0\1", 11)).has_value());
  EXPECT_FALSE(parse_record_key(std::string_view("a b\0\0\0\0\0\0\0\0\1", 12)).has_value());
  const RecordKey ok("room", 5);
  EXPECT_FALSE(parse_record_key(ok.view().substr(0, ok.view().size() - 1)).has_value());
}

// ---- bodies

TEST(Record, BodyRoundTripsEveryField) {
  const ChatMessage m = sample();
  std::string body;
  encode_body(m, body);
  // Four u32 lengths plus the bytes.
  EXPECT_EQ(body.size(),
            16 + m.user_id.size() + m.name.size() + m.text.size() + m.client_id.size());
  ChatMessage back;
  ASSERT_TRUE(decode_body(body, back));
  expect_same_body(back, m);

  ChatMessage empty_client = m;
  empty_client.client_id.clear();
  body.clear();
  encode_body(empty_client, body);
  ASSERT_TRUE(decode_body(body, back));
  EXPECT_EQ(back.client_id, "");
}

TEST(Record, BodyDecoderRejectsTruncationAndTrailingBytes) {
  std::string body;
  encode_body(sample(), body);
  ChatMessage back;
  for (std::size_t n = 0; n < body.size(); ++n) {
    EXPECT_FALSE(decode_body(std::string_view(body).substr(0, n), back)) << n;
  }
  EXPECT_FALSE(decode_body(body + "x", back));
  // A length that points past the end.
  std::string bad = body;
  bad[0] = '\x7f';
  EXPECT_FALSE(decode_body(bad, back));
}

// ---- sealing

TEST(Record, SealOpenRoundTrip) {
  auto cipher = RecordCipher::create(kKey);
  ASSERT_TRUE(cipher.is_ok());
  const ChatMessage m = sample();
  const RecordKey key("physics-101", m.seq);
  std::string value;
  cipher->seal(key.view(), m, value);
  ASSERT_EQ(value.size(), kRecordHeaderBytes + 16 + m.user_id.size() + m.name.size() +
                              m.text.size() + m.client_id.size() + crypto::kAeadTagBytes);
  EXPECT_EQ(static_cast<std::uint8_t>(value[0]), kRecordVersion);
  ChatMessage back;
  ASSERT_EQ(cipher->open(key.view(), value, back), OpenError::kNone);
  expect_same_body(back, m);
  EXPECT_EQ(back.ts_ms, m.ts_ms);
}

TEST(Record, TimestampIsStoredBigEndianInTheClear) {
  auto cipher = RecordCipher::create(kKey);
  ChatMessage m = sample();
  m.ts_ms = 0x0102030405060708;
  std::string value;
  cipher->seal(RecordKey("r", 1).view(), m, value);
  EXPECT_EQ(value.substr(1, 8), std::string("\x01\x02\x03\x04\x05\x06\x07\x08"));
}

TEST(Record, NoncesDifferBetweenSealsOfTheSameMessage) {
  auto cipher = RecordCipher::create(kKey);
  const RecordKey key("r", 1);
  std::string a, b;
  cipher->seal(key.view(), sample(), a);
  cipher->seal(key.view(), sample(), b);
  EXPECT_NE(a.substr(9, 12), b.substr(9, 12));
  EXPECT_NE(a, b);
}

TEST(Record, AadBindsRoomSeqAndHeader) {
  auto cipher = RecordCipher::create(kKey);
  const ChatMessage m = sample();
  std::string value;
  cipher->seal(RecordKey("room", 5).view(), m, value);
  ChatMessage back;
  EXPECT_EQ(cipher->open(RecordKey("room", 6).view(), value, back), OpenError::kAuthentication);
  EXPECT_EQ(cipher->open(RecordKey("other", 5).view(), value, back), OpenError::kAuthentication);
  std::string edited_ts = value;
  edited_ts[8] ^= 1;
  EXPECT_EQ(cipher->open(RecordKey("room", 5).view(), edited_ts, back), OpenError::kAuthentication);
  for (std::size_t i = kRecordHeaderBytes; i < value.size(); i += 7) {
    std::string flipped = value;
    flipped[i] ^= 0x20;
    EXPECT_EQ(cipher->open(RecordKey("room", 5).view(), flipped, back), OpenError::kAuthentication)
        << i;
  }
  EXPECT_EQ(cipher->open(RecordKey("room", 5).view(), value, back), OpenError::kNone);
}

TEST(Record, WrongKeyVersionAndShortValuesAreRefused) {
  auto cipher = RecordCipher::create(kKey);
  auto other = RecordCipher::create(std::string(32, 'o'));
  std::string value;
  const RecordKey key("room", 1);
  cipher->seal(key.view(), sample(), value);
  ChatMessage back;
  EXPECT_EQ(other->open(key.view(), value, back), OpenError::kAuthentication);
  std::string v2 = value;
  v2[0] = 2;
  EXPECT_EQ(cipher->open(key.view(), v2, back), OpenError::kVersion);
  EXPECT_EQ(cipher->open(key.view(), value.substr(0, kRecordHeaderBytes + 15), back),
            OpenError::kMalformed);
  EXPECT_FALSE(RecordCipher::create("short").is_ok());
}

TEST(Record, KeyCheckOpensOnlyWithItsKey) {
  auto cipher = RecordCipher::create(kKey);
  auto other = RecordCipher::create(std::string(32, 'o'));
  std::string check;
  cipher->seal_key_check(check);
  EXPECT_TRUE(cipher->key_check_opens(check));
  EXPECT_FALSE(other->key_check_opens(check));
  std::string flipped = check;
  flipped.back() ^= 1;
  EXPECT_FALSE(cipher->key_check_opens(flipped));
  EXPECT_FALSE(cipher->key_check_opens(""));
  EXPECT_FALSE(cipher->key_check_opens(check.substr(0, 20)));
}

}  // namespace
}  // namespace rc::persist
