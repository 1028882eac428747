// libFuzzer target for the client message decoder (protocol/json_decode.h),
// with the writer (protocol/json_writer.h) as its round-trip partner.
//
// For every input:
//   - decoding twice, with different padding bytes, accepts or rejects alike
//     and yields the same message (no state leaks between calls);
//   - a rejection has a message, and a ref that is a usable client_id;
//   - an acceptance implies the input is UTF-8 and RFC 8259 JSON (checked by
//     an independent grammar below), every view is readable valid UTF-8, and
//     every field respects PROTOCOL 3.2's ranges;
//   - an accepted message, written back with json::Writer, decodes to the
//     same message.

#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/json_decode.h"
#include "protocol/json_writer.h"
#include "protocol/utf8.h"

namespace {

using rc::msg::ClientMessage;
using rc::msg::Presence;
using rc::msg::Type;

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "json_fuzz: check failed: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

// ---- an independent RFC 8259 grammar check (bytes only; UTF-8 is checked apart)

class Grammar {
 public:
  explicit Grammar(std::string_view s) : s_(s) {}
  bool document() {
    ws();
    if (!value(0)) return false;
    ws();
    return i_ == s_.size();
  }

 private:
  static constexpr int kDepthMax = 512;
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool digits() {
    const std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }
  bool number() {
    eat('-');
    if (eat('0')) {
    } else if (i_ < s_.size() && s_[i_] >= '1' && s_[i_] <= '9') {
      digits();
    } else {
      return false;
    }
    if (eat('.') && !digits()) return false;
    if (eat('e') || eat('E')) {
      if (!eat('+')) eat('-');
      if (!digits()) return false;
    }
    return true;
  }
  bool string() {
    if (!eat('"')) return false;
    while (i_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') continue;
      if (i_ >= s_.size()) return false;
      const char e = s_[i_++];
      if (e == 'u') {
        for (int k = 0; k < 4; ++k, ++i_) {
          if (i_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_]))) return false;
        }
      } else if (!std::strchr("\"\\/bfnrt", e) || e == 0) {
        return false;
      }
    }
    return false;
  }
  template <typename Element>
  bool sequence(char close, Element element) {
    ws();
    if (eat(close)) return true;
    do {
      ws();
      if (!element()) return false;
      ws();
    } while (eat(','));
    return eat(close);
  }
  bool value(int depth) {
    if (depth > kDepthMax || i_ >= s_.size()) return false;
    switch (s_[i_]) {
      case '{':
        ++i_;
        return sequence('}', [&] {
          if (!string()) return false;
          ws();
          if (!eat(':')) return false;
          ws();
          return value(depth + 1);
        });
      case '[':
        ++i_;
        return sequence(']', [&] { return value(depth + 1); });
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

// Reads every byte of a view (out-of-bounds or stale memory trips ASan) and
// checks it is text the server may send on.
void check_text(std::string_view s) {
  unsigned sum = 0;
  for (char c : s) sum += static_cast<unsigned char>(c);
  CHECK(sum <= 255u * s.size());
  CHECK(rc::utf8::valid(s));
}

void check_trimmed(std::string_view s) {
  CHECK(rc::utf8::trim(s) == s);
}

void check_ranges(const ClientMessage& m, const rc::json::DecodeLimits& lim) {
  const Presence& p = m.presence;
  CHECK(m.client_id.size() <= rc::limits::client_id_bytes_max);
  check_text(m.client_id);
  switch (m.type) {
    case Type::kPresence:
      if (p.has & Presence::kHasX) CHECK(p.x >= 0.0 && p.x <= 1.0 && !std::signbit(p.x));
      if (p.has & Presence::kHasY) CHECK(p.y >= 0.0 && p.y <= 1.0 && !std::signbit(p.y));
      CHECK(p.emoji.size() <= rc::limits::emoji_bytes_max);
      check_text(p.emoji);
      CHECK(p.status != rc::msg::UserStatus::kIdle);
      check_text(p.status_text);
      check_trimmed(p.status_text);
      CHECK(rc::utf8::count_code_points(p.status_text) <= rc::limits::status_text_chars_max);
      check_text(p.name);
      check_trimmed(p.name);
      if (p.has & Presence::kHasName) {
        CHECK(!p.name.empty() && p.name.size() <= rc::limits::name_bytes_max);
        CHECK(!rc::utf8::has_control(p.name));
      }
      break;
    case Type::kChat:
      check_text(m.chat.text);
      check_trimmed(m.chat.text);
      CHECK(!m.chat.text.empty());
      CHECK(rc::utf8::count_code_points(m.chat.text) <= lim.chat_chars_max);
      CHECK(m.chat.client_id.size() <= rc::limits::client_id_bytes_max);
      CHECK(m.chat.client_id == m.client_id);
      break;
    case Type::kHistory:
      CHECK(m.history.limit >= 1 && m.history.limit <= rc::limits::history_limit_max);
      break;
    default:
      break;
  }
}

const char* type_name(Type t) {
  switch (t) {
    case Type::kPresence:
      return "presence";
    case Type::kChat:
      return "chat";
    case Type::kHistory:
      return "history";
    case Type::kSync:
      return "sync";
    case Type::kPing:
      return "ping";
    case Type::kLowerHands:
      return "lower_hands";
  }
  return "";
}

const char* status_name(rc::msg::UserStatus s) {
  switch (s) {
    case rc::msg::UserStatus::kOnline:
      return "online";
    case rc::msg::UserStatus::kAway:
      return "away";
    case rc::msg::UserStatus::kBusy:
      return "busy";
    case rc::msg::UserStatus::kIdle:
      return "idle";
  }
  return "";
}

std::string encode(const ClientMessage& m) {
  std::string out;
  rc::json::Writer w(out);
  w.begin_object().field("type", type_name(m.type));
  const Presence& p = m.presence;
  if (p.has & Presence::kHasX) w.field("x", p.x);
  if (p.has & Presence::kHasY) w.field("y", p.y);
  if (p.has & Presence::kHasEmoji) w.field("emoji", p.emoji);
  if (p.has & Presence::kHasHand) w.field("hand", p.hand);
  if (p.has & Presence::kHasStatus) w.field("status", status_name(p.status));
  if (p.has & Presence::kHasStatusText) w.field("status_text", p.status_text);
  if (p.has & Presence::kHasName) w.field("name", p.name);
  if (m.type == Type::kChat) w.field("text", m.chat.text);
  if (m.type == Type::kHistory) {
    if (m.history.before != 0) w.field("before", m.history.before);
    w.field("limit", m.history.limit);
  }
  if (m.type != Type::kChat || m.chat.has_client_id) {
    if (!m.client_id.empty() || m.chat.has_client_id) w.field("client_id", m.client_id);
  }
  w.end_object();
  CHECK(w.depth() == 0);
  return out;
}

bool same(const ClientMessage& a, const ClientMessage& b) {
  const Presence &p = a.presence, &q = b.presence;
  return a.type == b.type && a.client_id == b.client_id && p.has == q.has && p.x == q.x &&
         p.y == q.y && p.emoji == q.emoji && p.hand == q.hand && p.status == q.status &&
         p.status_text == q.status_text && p.name == q.name && a.chat.text == b.chat.text &&
         a.chat.client_id == b.chat.client_id && a.chat.has_client_id == b.chat.has_client_id &&
         a.history.before == b.history.before && a.history.limit == b.history.limit;
}

// Decodes `text` with `decoder` from a padded copy; the padding is filled with
// `fill` to show its contents never matter.
bool decode(rc::json::Decoder& decoder, std::string_view text, std::vector<std::uint8_t>& buf,
            std::uint8_t fill, ClientMessage& m, rc::json::DecodeError& err) {
  buf.assign(text.begin(), text.end());
  buf.resize(text.size() + rc::json::Decoder::padding(), fill);
  return decoder.decode(buf.data(), text.size(), rc::json::DecodeLimits{}, m, err);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static rc::json::Decoder decoder(rc::limits::message_bytes_default);
  static rc::json::Decoder again(rc::limits::message_bytes_default);
  static std::vector<std::uint8_t> buf, buf2;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Closing brackets are the padding most likely to fool a parser that reads
  // past the last token; the second decoder sees zeros instead.
  const std::uint8_t fill = size % 2 ? ']' : '}';

  ClientMessage m, m2;
  rc::json::DecodeError err, err2;
  const bool ok = decode(decoder, text, buf, fill, m, err);
  const bool ok2 = decode(again, text, buf2, 0, m2, err2);
  CHECK(ok == ok2);

  if (!ok) {
    CHECK(!err.message.empty());
    // Only the wording of a rejection may depend on the padding (see the header).
    CHECK(err.ref.size() <= rc::limits::client_id_bytes_max);
    CHECK(rc::utf8::valid(err.ref));
    return 0;
  }
  CHECK(same(m, m2));
  CHECK(size <= rc::limits::message_bytes_default);
  CHECK(rc::utf8::valid(text));
  CHECK(Grammar(text).document());
  check_ranges(m, rc::json::DecodeLimits{});

  const std::string written = encode(m);
  if (written.size() <= rc::limits::message_bytes_default) {
    const bool back = decode(again, written, buf2, '"', m2, err2);
    CHECK(back);
    CHECK(same(m, m2));
  }
  return 0;
}
