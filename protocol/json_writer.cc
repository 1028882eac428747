#include "protocol/json_writer.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

#include "core/assert.h"

namespace rc::json {

static_assert(Writer::nesting_max <= 64, "one bit of object_bits_ per level");

namespace {

// Bytes that cannot be copied as they are: '"', '\\', C0 controls, and 0xE2,
// the lead byte of U+2028/U+2029 (which then needs a closer look).
constexpr std::array<bool, 256> kSpecial = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  t['"'] = true;
  t['\\'] = true;
  t[0xE2] = true;
  return t;
}();

constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHighs = 0x8080808080808080ull;

// Nonzero iff some byte of w is below n (n <= 128): the classic SWAR test,
// exact as a yes/no answer.
constexpr std::uint64_t has_byte_below(std::uint64_t w, std::uint8_t n) {
  return (w - kOnes * n) & ~w & kHighs;
}
constexpr std::uint64_t has_byte(std::uint64_t w, std::uint8_t b) {
  return has_byte_below(w ^ (kOnes * b), 1);
}

// Index of the first special byte in [i, n), or n. Most text sent by the
// server is plain ASCII, so eight bytes are tested at a time.
std::size_t next_special(const unsigned char* p, std::size_t i, std::size_t n) {
  while (i + 8 <= n) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (has_byte_below(w, 0x20) | has_byte(w, '"') | has_byte(w, '\\') | has_byte(w, 0xE2)) break;
    i += 8;
  }
  while (i < n && !kSpecial[p[i]]) ++i;
  return i;
}

// Appends the escape for the special byte p[j] (and for U+2028/U+2029 the two
// bytes after it), advancing j past what it used.
void append_special(const unsigned char* p, std::size_t& j, std::size_t n, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const unsigned char c = p[j++];
  switch (c) {
    case '"':
      out.append("\\\"");
      return;
    case '\\':
      out.append("\\\\");
      return;
    case '\b':
      out.append("\\b");
      return;
    case '\f':
      out.append("\\f");
      return;
    case '\n':
      out.append("\\n");
      return;
    case '\r':
      out.append("\\r");
      return;
    case '\t':
      out.append("\\t");
      return;
    default:
      break;
  }
  if (c < 0x20) {
    const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
    out.append(u, sizeof u);
    return;
  }
  // c is 0xE2. U+2028/U+2029 are legal in JSON but end a line in JavaScript
  // source; every other character it leads (e.g. U+2014) passes through.
  if (j + 1 < n && p[j] == 0x80 && (p[j + 1] == 0xA8 || p[j + 1] == 0xA9)) {
    out.append(p[j + 1] == 0xA8 ? "\\u2028" : "\\u2029");
    j += 2;
    return;
  }
  out.push_back(static_cast<char>(c));
}

template <typename Int>
void append_integer(Int n, std::string& out) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

}  // namespace

void escape_string(std::string_view s, std::string& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  out.push_back('"');
  std::size_t i = 0;
  while (i < n) {
    const std::size_t j = next_special(p, i, n);
    out.append(s.data() + i, j - i);
    i = j;
    if (i < n) append_special(p, i, n, out);
  }
  out.push_back('"');
}

void Writer::before_value() {
  // In an object a value follows its key (which wrote the comma); elsewhere
  // it needs a comma after a previous element.
  if (in_object()) {
    RC_ASSERT(after_key_);
  } else if (need_comma_) {
    out_.push_back(',');
  }
  after_key_ = false;
  need_comma_ = true;
}

void Writer::open(bool is_object, char bracket) {
  before_value();
  RC_ASSERT(depth_ < nesting_max);
  const std::uint64_t level_bit = std::uint64_t{1} << depth_;
  object_bits_ = is_object ? (object_bits_ | level_bit) : (object_bits_ & ~level_bit);
  ++depth_;
  need_comma_ = false;
  out_.push_back(bracket);
}

void Writer::close(bool is_object, char bracket) {
  RC_ASSERT(depth_ > 0 && in_object() == is_object && !after_key_);
  --depth_;
  need_comma_ = true;
  out_.push_back(bracket);
}

Writer& Writer::begin_object() {
  open(true, '{');
  return *this;
}

Writer& Writer::end_object() {
  close(true, '}');
  return *this;
}

Writer& Writer::begin_array() {
  open(false, '[');
  return *this;
}

Writer& Writer::end_array() {
  close(false, ']');
  return *this;
}

Writer& Writer::key(std::string_view k) {
  RC_ASSERT(in_object() && !after_key_);
  if (need_comma_) out_.push_back(',');
  escape_string(k, out_);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

Writer& Writer::value(std::string_view s) {
  before_value();
  escape_string(s, out_);
  return *this;
}

Writer& Writer::value(const char* s) {
  RC_ASSERT(s != nullptr);
  return value(std::string_view(s));
}

Writer& Writer::value(bool b) {
  before_value();
  out_.append(b ? "true" : "false");
  return *this;
}

Writer& Writer::value(std::int64_t n) {
  before_value();
  append_integer(n, out_);
  return *this;
}

Writer& Writer::value(std::uint64_t n) {
  before_value();
  append_integer(n, out_);
  return *this;
}

Writer& Writer::value(std::uint32_t n) {
  return value(static_cast<std::uint64_t>(n));
}

Writer& Writer::value(int n) {
  return value(static_cast<std::int64_t>(n));
}

Writer& Writer::value(double d) {
  RC_ASSERT(std::isfinite(d));
  before_value();
  // fmt's "{}" is the shortest text that reads back as d (Dragonbox); it is
  // valid JSON for every finite double ("1e-07", "-0", "1e+21").
  char buf[32];
  const auto r = fmt::format_to_n(buf, sizeof buf, "{}", d);
  RC_ASSERT(r.size <= sizeof buf);
  out_.append(buf, r.size);
  return *this;
}

Writer& Writer::null() {
  before_value();
  out_.append("null");
  return *this;
}

Writer& Writer::raw(std::string_view json) {
  RC_ASSERT(!json.empty());
  before_value();
  out_.append(json);
  return *this;
}

}  // namespace rc::json
