#include "protocol/json_decode.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rc::json {
namespace {

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out.append(s);
  return out;
}

class DecodeTest : public ::testing::Test {
 protected:
  // Copies text into a buffer followed by padding() bytes of digits: the
  // padding's contents must never change the result.
  bool decode(std::string_view text, DecodeLimits lim = {}) {
    buf_.assign(text.begin(), text.end());
    buf_.resize(text.size() + Decoder::padding(), '7');
    err_ = {};
    return decoder_.decode(buf_.data(), text.size(), lim, msg_, err_);
  }

  // Decodes and expects a rejection whose message starts with `field`.
  void expect_rejected(std::string_view text, std::string_view field) {
    EXPECT_FALSE(decode(text)) << text;
    EXPECT_EQ(err_.message.substr(0, field.size()), field) << text << " -> " << err_.message;
  }

  std::vector<std::uint8_t> buf_;
  Decoder decoder_{limits::message_bytes_default};
  msg::ClientMessage msg_;
  DecodeError err_;
};

// ---- every message type

TEST_F(DecodeTest, PresenceWithEveryField) {
  ASSERT_TRUE(decode(R"({"type":"presence","x":0.5,"y":0.2,"emoji":"👍","hand":true,)"
                     R"("status":"busy","status_text":" in the lab ","name":"  Ada  "})"))
      << err_.message;
  const msg::Presence& p = msg_.presence;
  EXPECT_EQ(msg_.type, msg::Type::kPresence);
  EXPECT_EQ(p.has, 127);
  EXPECT_EQ(p.x, 0.5);
  EXPECT_EQ(p.y, 0.2);
  EXPECT_EQ(p.emoji, "👍");
  EXPECT_TRUE(p.hand);
  EXPECT_EQ(p.status, msg::UserStatus::kBusy);
  EXPECT_EQ(p.status_text, "in the lab");
  EXPECT_EQ(p.name, "Ada");
  EXPECT_EQ(msg_.client_id, "");
}

TEST_F(DecodeTest, PresenceFieldsAreIndependentlyOptional) {
  ASSERT_TRUE(decode(R"({"type":"presence"})"));
  EXPECT_EQ(msg_.presence.has, 0);
  ASSERT_TRUE(decode(R"({"hand":false,"type":"presence"})"));
  EXPECT_EQ(msg_.presence.has, msg::Presence::kHasHand);
  EXPECT_FALSE(msg_.presence.hand);
  ASSERT_TRUE(decode(R"({"type":"presence","y":1})"));
  EXPECT_EQ(msg_.presence.has, msg::Presence::kHasY);
  EXPECT_EQ(msg_.presence.y, 1.0);
}

TEST_F(DecodeTest, ChatWithAndWithoutClientId) {
  ASSERT_TRUE(decode(R"({"type":"chat","text":"hello","client_id":"c-1"})"));
  EXPECT_EQ(msg_.type, msg::Type::kChat);
  EXPECT_EQ(msg_.chat.text, "hello");
  EXPECT_TRUE(msg_.chat.has_client_id);
  EXPECT_EQ(msg_.chat.client_id, "c-1");
  EXPECT_EQ(msg_.client_id, "c-1");

  ASSERT_TRUE(decode(R"({"type":"chat","text":"a\nb \"q\" \u00e9\ud83d\udc4d"})"));
  EXPECT_EQ(msg_.chat.text, "a\nb \"q\" é👍");
  EXPECT_FALSE(msg_.chat.has_client_id);
  EXPECT_EQ(msg_.client_id, "");
}

TEST_F(DecodeTest, HistoryDefaultsAndValues) {
  ASSERT_TRUE(decode(R"({"type":"history"})"));
  EXPECT_EQ(msg_.type, msg::Type::kHistory);
  EXPECT_EQ(msg_.history.before, 0u);
  EXPECT_EQ(msg_.history.limit, 50u);
  ASSERT_TRUE(decode(R"({"type":"history","before":18,"limit":7})"));
  EXPECT_EQ(msg_.history.before, 18u);
  EXPECT_EQ(msg_.history.limit, 7u);
}

TEST_F(DecodeTest, BareTypes) {
  ASSERT_TRUE(decode(R"({"type":"sync"})"));
  EXPECT_EQ(msg_.type, msg::Type::kSync);
  ASSERT_TRUE(decode(R"({"type":"ping"})"));
  EXPECT_EQ(msg_.type, msg::Type::kPing);
  ASSERT_TRUE(decode(" \n{ \"type\" : \"lower_hands\" }\r\n "));
  EXPECT_EQ(msg_.type, msg::Type::kLowerHands);
}

TEST_F(DecodeTest, OutputIsResetBetweenCalls) {
  ASSERT_TRUE(decode(R"({"type":"presence","x":0.5,"client_id":"c"})"));
  ASSERT_TRUE(decode(R"({"type":"presence"})"));
  EXPECT_EQ(msg_.presence.has, 0);
  EXPECT_EQ(msg_.presence.x, 0.0);
  EXPECT_EQ(msg_.client_id, "");
}

// ---- presence fields: types and range edges

TEST_F(DecodeTest, CoordinateEdges) {
  for (const char* ok : {"0", "1", "1.0", "0.0", "0.5", "1e0", "1E-1", "1e-400"}) {
    ASSERT_TRUE(decode(std::string(R"({"type":"presence","x":)") + ok + "}")) << ok;
    EXPECT_EQ(msg_.presence.x, std::strtod(ok, nullptr)) << ok;
  }
  ASSERT_TRUE(decode(R"({"type":"presence","x":-0.0,"y":-0})"));
  EXPECT_EQ(msg_.presence.x, 0.0);
  EXPECT_FALSE(std::signbit(msg_.presence.x)) << "-0 is stored as 0";
  EXPECT_FALSE(std::signbit(msg_.presence.y));
  for (const char* bad : {"1.0000001", "-0.0000001", "2", "-1", "1e999", "-1e999", "1e1", "01",
                          "\"0.5\"", "null", "true", "[0.5]", "{}"}) {
    expect_rejected(std::string(R"({"type":"presence","x":)") + bad + "}", "x: ");
    expect_rejected(std::string(R"({"type":"presence","y":)") + bad + "}", "y: ");
  }
}

TEST_F(DecodeTest, EmojiLength) {
  const std::string e32 = repeat("😀", 8);  // 8 x 4 bytes
  ASSERT_EQ(e32.size(), 32u);
  ASSERT_TRUE(decode(R"({"type":"presence","emoji":")" + e32 + "\"}"));
  EXPECT_EQ(msg_.presence.emoji, e32);
  expect_rejected(R"({"type":"presence","emoji":")" + e32 + "a\"}", "emoji: ");
  ASSERT_TRUE(decode(R"({"type":"presence","emoji":""})"));
  EXPECT_EQ(msg_.presence.has, msg::Presence::kHasEmoji) << "\"\" clears";
  EXPECT_EQ(msg_.presence.emoji, "");
  expect_rejected(R"({"type":"presence","emoji":1})", "emoji: ");
  expect_rejected(R"({"type":"presence","emoji":null})", "emoji: ");
}

TEST_F(DecodeTest, Hand) {
  ASSERT_TRUE(decode(R"({"type":"presence","hand":true})"));
  EXPECT_TRUE(msg_.presence.hand);
  for (const char* bad : {"1", "0", "\"true\"", "null", "[]"}) {
    expect_rejected(std::string(R"({"type":"presence","hand":)") + bad + "}", "hand: ");
  }
}

TEST_F(DecodeTest, Status) {
  ASSERT_TRUE(decode(R"({"type":"presence","status":"online"})"));
  EXPECT_EQ(msg_.presence.status, msg::UserStatus::kOnline);
  ASSERT_TRUE(decode(R"({"type":"presence","status":"away"})"));
  EXPECT_EQ(msg_.presence.status, msg::UserStatus::kAway);
  ASSERT_TRUE(decode(R"({"type":"presence","status":"busy"})"));
  EXPECT_EQ(msg_.presence.status, msg::UserStatus::kBusy);
  for (const char* bad :
       {"\"idle\"", "\"offline\"", "\"Online\"", "\" busy\"", "\"\"", "1", "null"}) {
    expect_rejected(std::string(R"({"type":"presence","status":)") + bad + "}", "status: ");
  }
}

TEST_F(DecodeTest, StatusTextCountsCodePointsAfterTrimming) {
  const std::string t100 = repeat("é", 50) + repeat("漢", 49) + "👍";  // 100 code points
  ASSERT_TRUE(decode(R"({"type":"presence","status_text":")" + t100 + "\"}"));
  EXPECT_EQ(msg_.presence.status_text, t100);
  ASSERT_TRUE(decode(R"({"type":"presence","status_text":"  \t)" + t100 + R"(\n "})"));
  EXPECT_EQ(msg_.presence.status_text, t100);
  expect_rejected(R"({"type":"presence","status_text":")" + t100 + "é\"}", "status_text: ");
  ASSERT_TRUE(decode(R"({"type":"presence","status_text":"   "})"));
  EXPECT_EQ(msg_.presence.status_text, "");
  expect_rejected(R"({"type":"presence","status_text":false})", "status_text: ");
}

TEST_F(DecodeTest, NameRules) {
  ASSERT_TRUE(decode(R"({"type":"presence","name":" \t Zoë \r\n"})"));
  EXPECT_EQ(msg_.presence.name, "Zoë");
  const std::string n64 = repeat("ab", 32);
  ASSERT_TRUE(decode(R"({"type":"presence","name":"  )" + n64 + "  \"}"));
  EXPECT_EQ(msg_.presence.name, n64);
  ASSERT_TRUE(decode(R"({"type":"presence","name":"Z"})"));
  expect_rejected(R"({"type":"presence","name":")" + n64 + "c\"}", "name: ");
  expect_rejected(R"({"type":"presence","name":""})", "name: ");
  expect_rejected(R"({"type":"presence","name":" \t "})", "name: ");
  for (const char* ctl : {"\\u0007", "\\n", "\\u0000", "\\u007f", "\\u0085"}) {
    expect_rejected(std::string(R"({"type":"presence","name":"A)") + ctl + "B\"}", "name: ");
  }
  expect_rejected(R"({"type":"presence","name":42})", "name: ");
}

// ---- chat

TEST_F(DecodeTest, ChatTextLimits) {
  ASSERT_TRUE(decode(R"({"type":"chat","text":"  hi \n"})"));
  EXPECT_EQ(msg_.chat.text, "hi");
  expect_rejected(R"({"type":"chat","text":""})", "text: ");
  expect_rejected(R"({"type":"chat","text":" \t\r\n\f\u000b"})", "text: ");
  expect_rejected(R"({"type":"chat"})", "text: missing");
  expect_rejected(R"({"type":"chat","text":5})", "text: ");
  expect_rejected(R"({"type":"chat","text":null})", "text: ");

  DecodeLimits small;
  small.chat_chars_max = 5;
  EXPECT_TRUE(decode(R"({"type":"chat","text":" héllo "})", small));
  EXPECT_EQ(msg_.chat.text, "héllo");
  EXPECT_FALSE(decode(R"({"type":"chat","text":"héllo!"})", small));
  EXPECT_EQ(err_.message.substr(0, 6), "text: ");

  const std::string t2000 = repeat("é", 2000);
  EXPECT_TRUE(decode(R"({"type":"chat","text":")" + t2000 + "\"}"));
  EXPECT_EQ(msg_.chat.text.size(), 4000u);
  expect_rejected(R"({"type":"chat","text":")" + t2000 + "e\"}", "text: ");
}

TEST_F(DecodeTest, ChatClientId) {
  const std::string id64(64, 'c');
  ASSERT_TRUE(decode(R"({"type":"chat","text":"x","client_id":")" + id64 + "\"}"));
  EXPECT_EQ(msg_.chat.client_id, id64);
  expect_rejected(R"({"type":"chat","text":"x","client_id":")" + id64 + "c\"}", "client_id: ");
  EXPECT_EQ(err_.ref, "") << "an over-long client_id is not echoed";
  expect_rejected(R"({"type":"chat","text":"x","client_id":7})", "client_id: ");
  expect_rejected(R"({"type":"chat","text":"x","client_id":null})", "client_id: ");
  ASSERT_TRUE(decode(R"({"type":"chat","text":"x","client_id":""})"));
  EXPECT_TRUE(msg_.chat.has_client_id);
}

TEST_F(DecodeTest, ClientIdOnOtherTypesIsKeptOnlyWhenUsable) {
  ASSERT_TRUE(decode(R"({"type":"ping","client_id":"p-1"})"));
  EXPECT_EQ(msg_.client_id, "p-1");
  ASSERT_TRUE(decode(R"({"type":"presence","client_id":")" + std::string(65, 'c') + "\"}"));
  EXPECT_EQ(msg_.client_id, "");
  ASSERT_TRUE(decode(R"({"type":"sync","client_id":{"a":[1]}})"));
  EXPECT_EQ(msg_.client_id, "");
  EXPECT_FALSE(decode(R"({"type":"sync","client_id":[1 2]})")) << "still has to be JSON";
}

// ---- history

TEST_F(DecodeTest, HistoryEdges) {
  ASSERT_TRUE(decode(R"({"type":"history","before":1,"limit":1})"));
  EXPECT_EQ(msg_.history.before, 1u);
  EXPECT_EQ(msg_.history.limit, 1u);
  ASSERT_TRUE(decode(R"({"type":"history","before":18446744073709551615,"limit":200})"));
  EXPECT_EQ(msg_.history.before, UINT64_MAX);
  EXPECT_EQ(msg_.history.limit, 200u);
  for (const char* bad :
       {"0", "-1", "1.5", "1.0", "1e2", "18446744073709551616", "\"18\"", "null"}) {
    expect_rejected(std::string(R"({"type":"history","before":)") + bad + "}", "before: ");
  }
  for (const char* bad : {"0", "201", "-5", "50.0", "\"50\"", "null", "true"}) {
    expect_rejected(std::string(R"({"type":"history","limit":)") + bad + "}", "limit: ");
  }
}

// ---- the message as a whole

TEST_F(DecodeTest, NotJsonOrNotAnObject) {
  for (const char* bad : {"", " ", "hello", "{", "}", R"({"type":"ping")", R"({"type":"ping",})",
                          R"({"type" "ping"})", R"({type:"ping"})", R"({'type':'ping'})",
                          // Found by fuzzing: each once led On-Demand astray.
                          R"({"type":"presence":.000P001,"extarZZZZZZ"}})", R"({"a":"b":1})",
                          R"({"type":"ping","a":{"b":1})", R"({"type":"ping","x":0,"y":1}}})"}) {
    EXPECT_FALSE(decode(bad)) << bad;
    EXPECT_FALSE(err_.message.empty());
  }
  for (const char* bad : {"[1]", R"([{"type":"ping"}])", "\"ping\"", "5", "null", "true"}) {
    EXPECT_FALSE(decode(bad)) << bad;
    EXPECT_EQ(err_.message, "not a JSON object") << bad;
  }
}

TEST_F(DecodeTest, TypeRules) {
  expect_rejected("{}", "type: missing");
  expect_rejected(R"({"x":0.5,"text":"hi"})", "type: missing");
  expect_rejected(R"({"type":5})", "type: must be a string");
  expect_rejected(R"({"type":null})", "type: must be a string");
  expect_rejected(R"({"type":["ping"]})", "type: must be a string");
  expect_rejected(R"({"type":"pong"})", "type: unknown");
  expect_rejected(R"({"type":"Ping"})", "type: unknown");
  expect_rejected(R"({"type":""})", "type: unknown");
  expect_rejected(R"({"type":"ping","type":"ping"})", "type: appears more than once");
  expect_rejected(R"({"a":1,"type":"ping","type":"ping"})", "type: appears more than once");
  expect_rejected(R"({"x":0.5,"type":"presence","x":0.5})", "x: appears more than once");
  ASSERT_TRUE(decode(R"({"t\u0079pe":"p\u0069ng"})")) << "keys and values are unescaped";
  EXPECT_EQ(msg_.type, msg::Type::kPing);
  ASSERT_TRUE(decode(R"({"a":1,"b":[2],"type":"chat","text":"late type"})"));
  EXPECT_EQ(msg_.chat.text, "late type");
}

TEST_F(DecodeTest, DuplicateKnownFieldsAreRejected) {
  expect_rejected(R"({"type":"presence","x":0.1,"x":0.2})", "x: appears more than once");
  expect_rejected(R"({"type":"chat","text":"a","text":"b"})", "text: appears more than once");
  expect_rejected(R"({"type":"history","limit":1,"limit":1})", "limit: appears more than once");
  // Unknown fields (and the fields of other types) may repeat.
  EXPECT_TRUE(decode(R"({"type":"ping","a":1,"a":2,"x":1,"x":"y"})"));
}

TEST_F(DecodeTest, UnknownFieldsAreIgnoredWhateverTheirValue) {
  ASSERT_TRUE(decode(R"({"type":"presence","x":0.25,"extra":{"a":[1,2,{"b":null}],"c":"d"},)"
                     R"("n":-1.5e3,"t":true,"f":false,"z":null,"s":"\u00e9\n","e":[],"o":{},)"
                     R"("text":5,"before":"x","big":123456789012345678})"))
      << err_.message;
  EXPECT_EQ(msg_.presence.has, msg::Presence::kHasX);
  EXPECT_EQ(msg_.presence.x, 0.25);
  // Fields another type defines are unknown here, so their values are free.
  EXPECT_TRUE(decode(R"({"type":"chat","text":"t","x":"far","hand":3,"limit":-1})"));
  EXPECT_TRUE(decode(R"({"type":"history","text":[],"status":"idle"})"));
}

TEST_F(DecodeTest, UnknownFieldsMustStillBeJson) {
  for (const char* bad :
       {"tru",        "nul",   "[1 2]",   "[1,]",        R"({"a" 1})",   R"({"a":1,})",
        "01",         "-",     "1.",      ".5",          "+1",           "1e",
        "1e+",        "1.5.5", "--1",     "0x10",        "1e5e5",        "-01",
        "Infinity",   "NaN",   R"("\q")", R"("\ud800")", R"("\udc00x")", "[[1]",
        "{\"a\":[}]}"}) {
    EXPECT_FALSE(decode(std::string(R"({"type":"ping","junk":)") + bad + "}")) << bad;
    EXPECT_FALSE(decode(std::string(R"({"type":"ping","junk":[)") + bad + "]}")) << bad;
  }
}

TEST_F(DecodeTest, IgnoredNumbersMayBeBeyondAnyMachineType) {
  // JSON numbers have no range: an ignored one only has to be one.
  for (const char* big :
       {"1e999", "-1e999", "1E+400", "123456789012345678901234567890", "-18446744073709551616",
        "0.1234567890123456789012345678901234567890", "1e-999", "-0", "0e0", "5.0E-1"}) {
    EXPECT_TRUE(decode(std::string(R"({"type":"ping","n":)") + big + "}")) << big;
    EXPECT_TRUE(decode(std::string(R"({"type":"chat","text":"hi","n":[)") + big + " ]}")) << big;
    EXPECT_TRUE(decode(std::string(R"({"type":"presence","x":0.5,"n":{"a":)") + big + "\n}}"))
        << big;
    EXPECT_EQ(msg_.presence.x, 0.5);
  }
}

TEST_F(DecodeTest, UnknownFieldNestingIsBounded) {
  const std::size_t max = unknown_value_depth_max;
  const std::string ok = repeat("[", max) + repeat("]", max);
  EXPECT_TRUE(decode(R"({"type":"ping","deep":)" + ok + "}")) << err_.message;
  const std::string objects = repeat(R"({"a":)", max) + "1" + repeat("}", max);
  EXPECT_TRUE(decode(R"({"type":"ping","deep":)" + objects + "}")) << err_.message;
  const std::string too_deep = repeat("[", max + 1) + repeat("]", max + 1);
  EXPECT_FALSE(decode(R"({"type":"ping","deep":)" + too_deep + "}"));
  EXPECT_NE(err_.message.find("deep"), std::string::npos) << err_.message;
}

TEST_F(DecodeTest, TrailingContentIsRejected) {
  for (const char* bad : {R"({"type":"ping"} x)", R"({"type":"ping"}})", R"({"type":"ping"}{})",
                          R"({"type":"ping"},)", R"({"type":"ping"} "x")", R"({"type":"ping"} 1)",
                          R"({"type":"ping"}])"}) {
    EXPECT_FALSE(decode(bad)) << bad;
  }
  EXPECT_TRUE(decode("{\"type\":\"ping\"} \t\r\n"));
}

TEST_F(DecodeTest, InvalidUtf8InsideAString) {
  const std::string bad_bytes[] = {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
  for (const std::string& b : bad_bytes) {
    EXPECT_FALSE(decode("{\"type\":\"chat\",\"text\":\"a" + b + "\"}"));
    EXPECT_FALSE(decode("{\"type\":\"ping\",\"junk\":\"" + b + "\"}"));
    EXPECT_FALSE(decode("{\"type\":\"ping\",\"" + b + "\":1}"));
  }
  expect_rejected(R"({"type":"chat","text":"\ud800"})", "text: has an invalid escape sequence");
  expect_rejected(R"({"type":"presence","name":"\x41"})", "name: has an invalid escape sequence");
  expect_rejected(R"({"type":"chat","text":"\udc4d\ud83d"})", "text: ");
  EXPECT_FALSE(decode("{\"type\":\"chat\",\"text\":\"a\tb\"}")) << "raw control in a string";
}

TEST_F(DecodeTest, RefCarriesTheClientIdWhenReadable) {
  expect_rejected(R"({"type":"chat","text":"  ","client_id":"c-1"})", "text: ");
  EXPECT_EQ(err_.ref, "c-1");
  expect_rejected(R"({"type":"presence","x":2,"client_id":"c-2"})", "x: ");
  EXPECT_EQ(err_.ref, "c-2") << "found even after the bad field";
  // Numbers no machine type holds are out of range for a known field, and
  // still JSON: the client_id after them is found.
  expect_rejected(R"({"type":"presence","x":1e999,"client_id":"c-2a"})", "x: ");
  EXPECT_EQ(err_.ref, "c-2a");
  expect_rejected(R"({"type":"history","limit":123456789012345678901234567890,"client_id":"c-2b"})",
                  "limit: ");
  EXPECT_EQ(err_.ref, "c-2b");
  expect_rejected(R"({"type":"chat","text":"a\ud800b","client_id":"c-2c"})", "text: ");
  EXPECT_EQ(err_.ref, "c-2c") << "a bad escape before client_id";
  expect_rejected(R"({"client_id":"c-3","type":"bogus"})", "type: ");
  EXPECT_EQ(err_.ref, "c-3");
  EXPECT_FALSE(decode(R"({"client_id":"c-4","type":"ping","junk":tru})"));
  EXPECT_EQ(err_.ref, "c-4");
  EXPECT_FALSE(decode(R"({"type":"ping","client_id":"c-5"}})"));
  EXPECT_EQ(err_.ref, "c-5");
  EXPECT_FALSE(decode(R"({"type":"ping","client_id":5,"x":tru})"));
  EXPECT_EQ(err_.ref, "");
  EXPECT_FALSE(decode("not json"));
  EXPECT_EQ(err_.ref, "");
  EXPECT_FALSE(decode(R"({"type":"chat","client_id":"c-6")"));
  EXPECT_EQ(err_.ref, "");
}

TEST_F(DecodeTest, MessageLargerThanTheDecoderIsRejected) {
  Decoder small(limits::message_bytes_min);
  std::string text = R"({"type":"chat","text":")" + std::string(300, 'a') + "\"}";
  std::vector<std::uint8_t> buf(text.begin(), text.end());
  buf.resize(text.size() + Decoder::padding());
  msg::ClientMessage m;
  DecodeError e;
  EXPECT_FALSE(small.decode(buf.data(), text.size(), {}, m, e));
  EXPECT_EQ(e.message, "message too large");
  text = R"({"type":"chat","text":")" + std::string(200, 'a') + "\"}";
  buf.assign(text.begin(), text.end());
  buf.resize(text.size() + Decoder::padding());
  EXPECT_TRUE(small.decode(buf.data(), text.size(), {}, m, e));
  EXPECT_EQ(m.chat.text.size(), 200u);
}

TEST_F(DecodeTest, MovedDecoderKeepsWorking) {
  Decoder moved = std::move(decoder_);
  const std::string text = R"({"type":"chat","text":"after the move"})";
  std::vector<std::uint8_t> buf(text.begin(), text.end());
  buf.resize(text.size() + Decoder::padding());
  ASSERT_TRUE(moved.decode(buf.data(), text.size(), {}, msg_, err_));
  EXPECT_EQ(msg_.chat.text, "after the move");
  decoder_ = std::move(moved);
  ASSERT_TRUE(decode(R"({"type":"ping"})"));
}

TEST_F(DecodeTest, LongMessagesAtCapacity) {
  // Many keys before `type`: both passes unescape them, which must fit.
  std::string text = "{";
  while (text.size() < limits::message_bytes_default - 40) text += R"("k\u0061aaaaaa":"v\u0062",)";
  text += R"("type":"ping"})";
  ASSERT_LE(text.size(), limits::message_bytes_default);
  EXPECT_TRUE(decode(text)) << err_.message;
  std::string one_key =
      "{\"" + std::string(limits::message_bytes_default - 30, 'k') + R"(":1,"type":"sync"})";
  ASSERT_LE(one_key.size(), limits::message_bytes_default);
  EXPECT_TRUE(decode(one_key)) << err_.message;
}

}  // namespace
}  // namespace rc::json
