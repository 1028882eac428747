#include "protocol/utf8.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace rc::utf8 {
namespace {

using namespace std::string_view_literals;

// An independent, slow reference: decode each sequence to its code point and
// check the RFC 3629 rules on the value (shortest form, no surrogates,
// <= U+10FFFF) rather than on byte ranges as the DFA does.
bool reference_valid(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t extra;
    std::uint32_t cp;
    if (b < 0x80) {
      extra = 0, cp = b;
    } else if ((b & 0xE0) == 0xC0) {
      extra = 1, cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      extra = 2, cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      extra = 3, cp = b & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr std::uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[extra]) return false;
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;
    if (cp > 0x10FFFF) return false;
    i += extra + 1;
  }
  return true;
}

std::string encode(std::uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

TEST(Utf8Valid, AcceptsBoundaryCodePoints) {
  for (std::string_view s :
       {""sv, "a"sv, "\x7F"sv, "\xC2\x80"sv, "\xDF\xBF"sv, "\xE0\xA0\x80"sv, "\xED\x9F\xBF"sv,
        "\xEE\x80\x80"sv, "\xEF\xBF\xBF"sv, "\xF0\x90\x80\x80"sv, "\xF4\x8F\xBF\xBF"sv,
        "h\xC3\xA9llo w\xC3\xB6rld \xF0\x9F\x91\x8D"sv}) {
    EXPECT_TRUE(valid(s)) << testing::PrintToString(s);
  }
  EXPECT_TRUE(valid(std::string_view("a\0b", 3)));  // NUL is a valid code point
}

TEST(Utf8Valid, RejectsOverlongEncodings) {
  for (std::string_view s : {"\xC0\xAF"sv, "\xC1\xBF"sv, "\xE0\x80\xAF"sv, "\xE0\x9F\xBF"sv,
                             "\xF0\x80\x80\xAF"sv, "\xF0\x8F\xBF\xBF"sv, "\xC0\x80"sv}) {
    EXPECT_FALSE(valid(s)) << testing::PrintToString(s);
  }
}

TEST(Utf8Valid, RejectsSurrogates) {
  for (std::string_view s : {"\xED\xA0\x80"sv, "\xED\xAD\xBF"sv, "\xED\xAE\x80"sv, "\xED\xBF\xBF"sv,
                             "\xED\xA0\x80\xED\xB0\x80"sv}) {
    EXPECT_FALSE(valid(s)) << testing::PrintToString(s);
  }
}

TEST(Utf8Valid, RejectsAboveMaxCodePoint) {
  for (std::string_view s : {"\xF4\x90\x80\x80"sv, "\xF4\xBF\xBF\xBF"sv, "\xF5\x80\x80\x80"sv,
                             "\xF7\xBF\xBF\xBF"sv, "\xF8\x88\x80\x80\x80"sv, "\xFE"sv, "\xFF"sv}) {
    EXPECT_FALSE(valid(s)) << testing::PrintToString(s);
  }
}

TEST(Utf8Valid, RejectsTruncatedAndStrayBytes) {
  for (std::string_view s :
       {"\xC3"sv, "\xE2\x82"sv, "\xF0\x9F\x91"sv, "abc\xE2\x82"sv, "\x80"sv, "\xBF"sv, "a\x80z"sv,
        "\xC3\x28"sv, "\xE2\x28\xA1"sv, "\xF0\x28\x8C\xBC"sv}) {
    EXPECT_FALSE(valid(s)) << testing::PrintToString(s);
  }
}

TEST(Utf8Valid, FindsBadByteAtEveryOffsetOfLongAscii) {
  // Exercises the 8-bytes-at-a-time ASCII path: the bad byte must be seen
  // wherever it sits relative to the word boundaries.
  for (std::size_t len = 1; len < 40; ++len) {
    for (std::size_t at = 0; at < len; ++at) {
      std::string s(len, 'x');
      s[at] = '\xFF';
      EXPECT_FALSE(valid(s)) << len << " " << at;
      s[at] = 'y';
      EXPECT_TRUE(valid(s));
    }
  }
}

TEST(Utf8Valid, AgreesWithReferenceOnEveryCodePoint) {
  for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    const std::string s = "ab" + encode(cp) + "cdefghij";
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    ASSERT_EQ(valid(s), !surrogate) << std::hex << cp;
  }
}

TEST(Utf8Valid, AgreesWithReferenceOnAllShortSequences) {
  std::string s(3, '\0');
  for (unsigned a = 0; a < 256; ++a) {
    for (unsigned b = 0; b < 256; ++b) {
      for (unsigned c = 0; c < 256; c += (a < 0xC0 ? 17 : 1)) {
        s[0] = static_cast<char>(a), s[1] = static_cast<char>(b), s[2] = static_cast<char>(c);
        ASSERT_EQ(valid(s), reference_valid(s)) << std::hex << a << " " << b << " " << c;
      }
      ASSERT_EQ(valid(s.substr(0, 2)), reference_valid(s.substr(0, 2)));
    }
  }
}

TEST(Utf8Valid, AgreesWithReferenceOnRandomStrings) {
  std::mt19937 rng(20240611);
  // Bytes biased towards the interesting lead and continuation ranges.
  const std::string alphabet =
      "a~\x7F\x80\x8F\x90\x9F\xA0\xBF\xC0\xC1\xC2\xDF\xE0\xE1\xED\xEE\xEF"
      "\xF0\xF1\xF3\xF4\xF5\xFF";
  for (int round = 0; round < 200000; ++round) {
    std::string s(rng() % 12, '\0');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    ASSERT_EQ(valid(s), reference_valid(s)) << testing::PrintToString(s);
  }
}

TEST(Utf8Validator, AcceptsEverySplitOfValidText) {
  const std::string text = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x91\x8D end";
  for (std::size_t a = 0; a <= text.size(); ++a) {
    for (std::size_t b = a; b <= text.size(); ++b) {
      Validator v;
      EXPECT_TRUE(v.feed(std::string_view(text).substr(0, a)));
      EXPECT_TRUE(v.feed(std::string_view(text).substr(a, b - a)));
      EXPECT_TRUE(v.feed(std::string_view(text).substr(b)));
      EXPECT_TRUE(v.finish()) << a << " " << b;
    }
  }
}

TEST(Utf8Validator, FinishRejectsOpenSequence) {
  Validator v;
  EXPECT_TRUE(v.feed("ok\xF0\x9F"));
  EXPECT_FALSE(v.finish());
  EXPECT_TRUE(v.feed("\x91\x8D"));
  EXPECT_TRUE(v.finish());
}

TEST(Utf8Validator, FailsFastAndStaysFailed) {
  Validator v;
  EXPECT_TRUE(v.feed("\xED"));
  EXPECT_FALSE(v.feed("\xA0"));  // a surrogate: no later byte can repair it
  EXPECT_FALSE(v.feed("valid"));
  EXPECT_FALSE(v.finish());
  v.reset();
  EXPECT_TRUE(v.feed("fresh"));
  EXPECT_TRUE(v.finish());
}

TEST(Utf8Validator, EmptyIsValid) {
  Validator v;
  EXPECT_TRUE(v.finish());
  EXPECT_TRUE(v.feed(""));
  EXPECT_TRUE(v.finish());
}

TEST(Utf8CountCodePoints, CountsEachLength) {
  EXPECT_EQ(count_code_points(""), 0u);
  EXPECT_EQ(count_code_points("hello"), 5u);
  EXPECT_EQ(count_code_points("\xC3\xA9"), 1u);
  EXPECT_EQ(count_code_points("\xE2\x82\xAC"), 1u);
  EXPECT_EQ(count_code_points("\xF0\x9F\x91\x8D"), 1u);
  EXPECT_EQ(count_code_points("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x91\x8Dz"), 5u);
}

TEST(Utf8CountCodePoints, MatchesEncodedCountAcrossWordBoundaries) {
  std::mt19937 rng(7);
  const std::uint32_t samples[] = {'a', 0xE9, 0x20AC, 0x1F44D, 0x7F, 0x80, 0x10FFFF};
  for (int round = 0; round < 2000; ++round) {
    std::string s;
    const std::size_t n = rng() % 40;
    for (std::size_t i = 0; i < n; ++i) s += encode(samples[rng() % std::size(samples)]);
    ASSERT_EQ(count_code_points(s), n);
  }
}

TEST(Utf8HasControl, FindsC0DelAndC1) {
  EXPECT_FALSE(has_control(""));
  EXPECT_FALSE(has_control("Ada Lovelace"));
  EXPECT_FALSE(has_control("caf\xC3\xA9 \xF0\x9F\x91\x8D"));
  EXPECT_FALSE(has_control("\xC2\xA0"));  // U+00A0, no-break space: not a control
  EXPECT_FALSE(has_control("\xC3\x80"));  // U+00C0
  EXPECT_TRUE(has_control(std::string_view("a\0b", 3)));
  EXPECT_TRUE(has_control("tab\there"));
  EXPECT_TRUE(has_control("line\n"));
  EXPECT_TRUE(has_control("\x1F"));
  EXPECT_TRUE(has_control("del\x7F"));
  EXPECT_TRUE(has_control("\xC2\x80"));   // U+0080
  EXPECT_TRUE(has_control("x\xC2\x9F"));  // U+009F
  EXPECT_FALSE(has_control("\xC2"));      // truncated: no read past the end
}

TEST(Utf8Trim, RemovesTheSixSpaceCharacters) {
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim(" \t\n\v\f\r"), "");
  EXPECT_EQ(trim("  hi  "), "hi");
  EXPECT_EQ(trim("\r\nhello world\t"), "hello world");
  EXPECT_EQ(trim("a b"), "a b");
  EXPECT_EQ(trim("\xC2\xA0x\xC2\xA0"), "\xC2\xA0x\xC2\xA0");  // no-break space stays
  EXPECT_EQ(trim(std::string_view("\0x\0", 3)), std::string_view("\0x\0", 3));
}

TEST(Utf8Trim, ReturnsViewIntoInput) {
  const std::string s = "  word ";
  const std::string_view t = trim(s);
  EXPECT_EQ(t.data(), s.data() + 2);
  EXPECT_EQ(t.size(), 4u);
}

}  // namespace
}  // namespace rc::utf8
