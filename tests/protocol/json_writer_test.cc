#include "protocol/json_writer.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "protocol/json_decode.h"

namespace rc::json {
namespace {

std::string escaped(std::string_view s) {
  std::string out;
  escape_string(s, out);
  return out;
}

// A byte-at-a-time model of the escaping rules, to hold the word-at-a-time
// scanner to.
std::string model_escape(std::string_view s) {
  static const char* const kShort[0x20] = {nullptr, nullptr, nullptr, nullptr, nullptr,
                                           nullptr, nullptr, nullptr, "\\b",   "\\t",
                                           "\\n",   nullptr, "\\f",   "\\r"};
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += kShort[c] ? kShort[c] : buf;
    } else if (s.substr(i, 3) == "\u2028" || s.substr(i, 3) == "\u2029") {
      out += s[i + 2] == '\xa8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out + "\"";
}

TEST(EscapeString, EveryControlCharacter) {
  const char* const expected[0x20] = {
      "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
      "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",     "\\u000e", "\\u000f",
      "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
      "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f"};
  for (int c = 0; c < 0x20; ++c) {
    EXPECT_EQ(escaped(std::string(1, static_cast<char>(c))), std::string("\"") + expected[c] + "\"")
        << c;
  }
}

TEST(EscapeString, QuotesBackslashAndPlainText) {
  EXPECT_EQ(escaped(""), "\"\"");
  EXPECT_EQ(escaped("plain text"), "\"plain text\"");
  EXPECT_EQ(escaped("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(escaped("C:\\dir\\"), "\"C:\\\\dir\\\\\"");
  EXPECT_EQ(escaped("/ and \x7f stay"), "\"/ and \x7f stay\"");
}

TEST(EscapeString, LineAndParagraphSeparators) {
  EXPECT_EQ(escaped("a\u2028b\u2029c"), "\"a\\u2028b\\u2029c\"");
  EXPECT_EQ(escaped("\u2028"), "\"\\u2028\"");
  // Other characters led by 0xE2 pass through, also when cut short at the end.
  EXPECT_EQ(escaped("\u2027\u202a—€→"), "\"\u2027\u202a—€→\"");
  EXPECT_EQ(escaped("x\xe2\x80"), "\"x\xe2\x80\"");
}

TEST(EscapeString, UnicodePassesThrough) {
  EXPECT_EQ(escaped("Zoë 漢字 👍 \u0085"), "\"Zoë 漢字 👍 \u0085\"");
}

TEST(EscapeString, AppendsToExistingContent) {
  std::string out = "prefix:";
  escape_string("a\nb", out);
  EXPECT_EQ(out, "prefix:\"a\\nb\"");
}

TEST(EscapeString, MatchesTheByteModelAtEveryAlignment) {
  const std::string alphabet[] = {"a",    "Z",      " ",      "\"", "\\", "\n", "\x01",
                                  "\x1f", "\u2028", "\u2029", "é",  "—",  "👍",  "\x7f"};
  std::mt19937 rng(12345);
  for (int round = 0; round < 3000; ++round) {
    std::string s;
    const int pieces = static_cast<int>(rng() % 40);
    for (int i = 0; i < pieces; ++i) {
      // Mostly plain letters, so that specials land at every offset of a word.
      s += rng() % 4 ? std::string(rng() % 9, 'p') : alphabet[rng() % std::size(alphabet)];
    }
    ASSERT_EQ(escaped(s), model_escape(s)) << s;
  }
}

TEST(EscapeString, LongTextAcrossChunkBoundaries) {
  for (std::size_t offset = 100; offset < 400; ++offset) {
    const std::string s = std::string(offset, 'a') + "\u2028\"" + std::string(offset, 'b') + "\n";
    ASSERT_EQ(escaped(s), model_escape(s)) << offset;
  }
  const std::string plain(5000, 'x');
  EXPECT_EQ(escaped(plain), "\"" + plain + "\"");
}

TEST(Writer, Integers) {
  std::string out;
  Writer w(out);
  w.begin_array()
      .value(0)
      .value(-5)
      .value(std::numeric_limits<std::int64_t>::min())
      .value(std::numeric_limits<std::int64_t>::max())
      .value(std::numeric_limits<std::uint64_t>::max())
      .value(std::uint32_t{4000000000u})
      .end_array();
  EXPECT_EQ(out, "[0,-5,-9223372036854775808,9223372036854775807,18446744073709551615,4000000000]");
}

TEST(Writer, DoublesAreShortestRoundTrip) {
  const std::pair<double, const char*> cases[] = {
      {0.5, "0.5"},        {0.1, "0.1"},    {1.0, "1"},
      {0.0, "0"},          {0.25, "0.25"},  {-0.0, "-0"},
      {1e21, "1e+21"},     {1e-7, "1e-07"}, {0.1 + 0.2, "0.30000000000000004"},
      {123456.0, "123456"}};
  for (const auto& [d, text] : cases) {
    std::string out;
    Writer(out).value(d);
    EXPECT_EQ(out, text);
  }
  for (double d : {DBL_MAX, DBL_MIN, 5e-324, 0.5123, 1.0 / 3.0, 2.0 / 3.0 * 1e-300}) {
    std::string out;
    Writer(out).value(d);
    EXPECT_EQ(std::strtod(out.c_str(), nullptr), d) << out;
  }
}

TEST(Writer, NestingAndCommas) {
  std::string out;
  Writer w(out);
  w.begin_object()
      .key("a")
      .begin_array()
      .value(1)
      .value("two")
      .begin_object()
      .key("b")
      .null()
      .end_object()
      .begin_array()
      .end_array()
      .end_array()
      .field("c", true)
      .key("d")
      .begin_object()
      .end_object()
      .field("e", 0.5)
      .key("f")
      .raw(R"({"pre":"encoded"})")
      .field("g", "lit")
      .field("h", std::string_view("view"))
      .end_object();
  EXPECT_EQ(out, R"({"a":[1,"two",{"b":null},[]],"c":true,"d":{},"e":0.5,"f":{"pre":"encoded"},)"
                 R"("g":"lit","h":"view"})");
  EXPECT_EQ(w.depth(), 0u);
}

TEST(Writer, RawInArraysAndKeysAreEscaped) {
  std::string out = "X";
  Writer w(out);
  w.begin_array().raw("1").raw("{}").value(false).end_array();
  EXPECT_EQ(out, "X[1,{},false]");
  out.clear();
  Writer(out).begin_object().field("k\"\n", 1).end_object();
  EXPECT_EQ(out, R"({"k\"\n":1})");
}

TEST(Writer, WelcomeMember) {
  std::string out;
  Writer w(out);
  w.begin_object()
      .field("user_id", "u42")
      .field("name", "Ada")
      .field("role", "student")
      .field("x", 0.5)
      .field("y", 0.25)
      .field("emoji", "")
      .field("hand", false)
      .field("hand_at", std::int64_t{0})
      .field("status", "online")
      .field("status_text", "")
      .field("devices", 1)
      .field("connected", true)
      .end_object();
  EXPECT_EQ(out, R"({"user_id":"u42","name":"Ada","role":"student","x":0.5,"y":0.25,"emoji":"",)"
                 R"("hand":false,"hand_at":0,"status":"online","status_text":"","devices":1,)"
                 R"("connected":true})");
}

// What the writer produces, the decoder (simdjson) reads back unchanged.
class RoundTrip : public ::testing::Test {
 protected:
  bool decode(const std::string& text) {
    buf_.assign(text.begin(), text.end());
    buf_.resize(text.size() + Decoder::padding());
    return decoder_.decode(buf_.data(), text.size(), {}, msg_, err_);
  }
  std::vector<std::uint8_t> buf_;
  Decoder decoder_{limits::message_bytes_default};
  msg::ClientMessage msg_;
  DecodeError err_;
};

TEST_F(RoundTrip, StringsWithEverythingThatNeedsEscaping) {
  std::string text = "start";
  for (int c = 1; c < 0x20; ++c) text += static_cast<char>(c);
  text += "\" \\ / \u2028 \u2029 é漢👍 \x7f end";
  std::string out;
  Writer(out)
      .begin_object()
      .field("type", "chat")
      .field("text", text)
      .field("client_id", "c\"1")
      .end_object();
  ASSERT_TRUE(decode(out)) << err_.message << " in " << out;
  // The decoder trims, so the text starts and ends with visible characters.
  EXPECT_EQ(msg_.chat.text, text);
  EXPECT_EQ(msg_.chat.client_id, "c\"1");
}

TEST_F(RoundTrip, DoublesComeBackExactly) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int i = 0; i < 1000; ++i) {
    const double x = unit(rng), y = i == 0 ? 1.0 : unit(rng) * 1e-5;
    std::string out;
    Writer(out).begin_object().field("type", "presence").field("x", x).field("y", y).end_object();
    ASSERT_TRUE(decode(out)) << out;
    ASSERT_EQ(msg_.presence.x, x) << out;
    ASSERT_EQ(msg_.presence.y, y) << out;
  }
}

TEST_F(RoundTrip, IntegersComeBackExactly) {
  std::string out;
  Writer(out)
      .begin_object()
      .field("type", "history")
      .field("before", std::numeric_limits<std::uint64_t>::max())
      .field("limit", 200)
      .end_object();
  ASSERT_TRUE(decode(out)) << out;
  EXPECT_EQ(msg_.history.before, std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(msg_.history.limit, 200u);
}

TEST(WriterDeathTest, MisuseIsAProgrammerError) {
  std::string out;
  EXPECT_DEATH(Writer(out).value(std::nan("")), "assertion failed");
  EXPECT_DEATH(Writer(out).value(HUGE_VAL), "assertion failed");
  EXPECT_DEATH(Writer(out).begin_array().key("k"), "assertion failed");
  EXPECT_DEATH(Writer(out).begin_object().value(1), "assertion failed");
  EXPECT_DEATH(Writer(out).begin_object().key("k").end_object(), "assertion failed");
  EXPECT_DEATH(Writer(out).begin_array().end_object(), "assertion failed");
  EXPECT_DEATH(Writer(out).end_array(), "assertion failed");
  EXPECT_DEATH(
      {
        Writer w(out);
        for (std::size_t i = 0; i <= Writer::nesting_max; ++i) w.begin_array();
      },
      "assertion failed");
}

}  // namespace
}  // namespace rc::json
