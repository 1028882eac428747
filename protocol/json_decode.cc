#include "protocol/json_decode.h"

#include <simdjson.h>

#include <cstring>
#include <string_view>

#include "core/assert.h"
#include "protocol/utf8.h"

namespace rc::json {

static_assert(Decoder::padding() == simdjson::SIMDJSON_PADDING,
              "Decoder::padding() must match the simdjson this file is built with");

namespace {

namespace od = simdjson::ondemand;

// Every key the protocol gives a meaning to, whatever the message type. Which
// of them a given type reads is decided by MessageReader::member.
enum class Key : std::uint8_t {
  kUnknown,
  kType,
  kX,
  kY,
  kEmoji,
  kHand,
  kStatus,
  kStatusText,
  kName,
  kText,
  kClientId,
  kBefore,
  kLimit,
};

constexpr const char* kKeyNames[] = {"",          "type",   "x",           "y",    "emoji",
                                     "hand",      "status", "status_text", "name", "text",
                                     "client_id", "before", "limit"};
static_assert(sizeof(kKeyNames) / sizeof(kKeyNames[0]) == static_cast<int>(Key::kLimit) + 1);

constexpr std::uint16_t bit(Key k) {
  return static_cast<std::uint16_t>(1u << static_cast<int>(k));
}

// The keys each message type defines (a duplicate of one of them is an error).
constexpr std::uint16_t kPresenceKeys = bit(Key::kType) | bit(Key::kX) | bit(Key::kY) |
                                        bit(Key::kEmoji) | bit(Key::kHand) | bit(Key::kStatus) |
                                        bit(Key::kStatusText) | bit(Key::kName);
constexpr std::uint16_t kChatKeys = bit(Key::kType) | bit(Key::kText) | bit(Key::kClientId);
constexpr std::uint16_t kHistoryKeys = bit(Key::kType) | bit(Key::kBefore) | bit(Key::kLimit);
constexpr std::uint16_t kBareKeys = bit(Key::kType);

constexpr std::uint16_t keys_of(msg::Type type) {
  switch (type) {
    case msg::Type::kPresence:
      return kPresenceKeys;
    case msg::Type::kChat:
      return kChatKeys;
    case msg::Type::kHistory:
      return kHistoryKeys;
    default:
      return kBareKeys;
  }
}

// Dispatches on length first: most keys are rejected or matched after one
// comparison of a few bytes.
Key key_of(std::string_view k) {
  switch (k.size()) {
    case 1:
      return k[0] == 'x' ? Key::kX : k[0] == 'y' ? Key::kY : Key::kUnknown;
    case 4:
      if (k == "type") return Key::kType;
      if (k == "hand") return Key::kHand;
      if (k == "name") return Key::kName;
      if (k == "text") return Key::kText;
      return Key::kUnknown;
    case 5:
      if (k == "emoji") return Key::kEmoji;
      if (k == "limit") return Key::kLimit;
      return Key::kUnknown;
    case 6:
      if (k == "status") return Key::kStatus;
      if (k == "before") return Key::kBefore;
      return Key::kUnknown;
    case 9:
      return k == "client_id" ? Key::kClientId : Key::kUnknown;
    case 11:
      return k == "status_text" ? Key::kStatusText : Key::kUnknown;
    default:
      return Key::kUnknown;
  }
}

template <typename T>
struct Name {
  std::string_view text;
  T value;
};

constexpr Name<msg::Type> kTypeNames[] = {
    {"presence", msg::Type::kPresence}, {"chat", msg::Type::kChat},
    {"history", msg::Type::kHistory},   {"sync", msg::Type::kSync},
    {"ping", msg::Type::kPing},         {"lower_hands", msg::Type::kLowerHands}};

// What clients may set; idle (and offline) are the server's alone.
constexpr Name<msg::UserStatus> kStatusNames[] = {{"online", msg::UserStatus::kOnline},
                                                  {"away", msg::UserStatus::kAway},
                                                  {"busy", msg::UserStatus::kBusy}};

template <typename T, std::size_t N>
bool lookup(const Name<T> (&names)[N], std::string_view s, T& out) {
  for (const Name<T>& n : names) {
    if (n.text == s) {
      out = n.value;
      return true;
    }
  }
  return false;
}

// A broken rule, as static text: failing costs no allocation until the caller
// copies it into a DecodeError.
struct Problem {
  Key field = Key::kUnknown;   // kUnknown: the problem is with the message as a whole
  const char* what = nullptr;  // nullptr: no problem
  explicit operator bool() const { return what != nullptr; }
};

constexpr Problem kOk{};
constexpr Problem kMalformed{Key::kUnknown, "malformed JSON"};

// ---- strings

constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHighs = 0x8080808080808080ull;
constexpr std::uint64_t has_byte(std::uint64_t w, std::uint8_t b) {
  const std::uint64_t x = w ^ (kOnes * b);
  return (x - kOnes) & ~x & kHighs;  // nonzero iff some byte of w is b
}

// The text of JSON strings. A string without escapes (nearly every key and
// most values) is viewed in place in the message; one with escapes is
// unescaped into a buffer of the decoder's, which start() empties before each
// pass over the message (a pass unescapes at most the message's length).
class Strings {
 public:
  Strings(od::parser& parser, std::uint8_t* buffer) : parser_(parser), buffer_(buffer) {}
  void start() { next_ = buffer_; }

  // `raw` points just past an opening quote that stage 1 has matched with a
  // closing one inside the message, so the scan stops inside the message; its
  // 8-byte reads may look up to 7 bytes further, into the padding.
  bool text(od::raw_json_string raw, std::string_view& out) {
    const char* begin = raw.raw();
    const char* p = begin;
    for (;; p += 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      if (has_byte(w, '"') | has_byte(w, '\\')) break;
    }
    while (*p != '"' && *p != '\\') ++p;
    if (*p == '"') {
      out = std::string_view(begin, static_cast<std::size_t>(p - begin));
      return true;
    }
    return !parser_.unescape(raw, next_).get(out);  // checks every escape
  }

  bool key(od::field& field, std::string_view& out) { return text(field.key(), out); }

  // INCORRECT_TYPE if v is not a string, STRING_ERROR for a bad escape.
  simdjson::error_code value(od::value& v, std::string_view& out) {
    od::raw_json_string raw;
    if (simdjson::error_code e = v.get_raw_json_string().get(raw)) return e;
    return text(raw, out) ? simdjson::SUCCESS : simdjson::STRING_ERROR;
  }

 private:
  od::parser& parser_;
  std::uint8_t* const buffer_;
  std::uint8_t* next_ = nullptr;
};

// One step of iterating an object: the member's field, used in place, and its
// key's text; nullptr if either is malformed. (Copying the field out of the
// step's result costs GCC a store-forwarding stall per member.)
od::field* open_member(simdjson::simdjson_result<od::field>& member, Strings& strings,
                       std::string_view& name) {
  if (member.error()) return nullptr;
  od::field& field = member.value_unsafe();
  return strings.key(field, name) ? &field : nullptr;
}

// RFC 8259 section 6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
bool is_json_number(std::string_view t) {
  std::size_t i = 0;
  auto digits = [&] {
    const std::size_t start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    return i > start;
  };
  if (i < t.size() && t[i] == '-') ++i;
  if (i < t.size() && t[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == t.size();
}

// Checks that a value the message type does not use is well-formed JSON.
// On-Demand would skip it by counting brackets alone and so accept `[1 2]`,
// `tru` or `01`, and skipping malformed text can carry it past the last token
// into the padding. Walking the value costs a little, and only when a client
// sends members the protocol does not define.
Problem check_ignored(od::value v, Strings& strings, std::size_t depth_left) {
  od::json_type type;
  if (v.type().get(type)) return kMalformed;
  switch (type) {
    case od::json_type::array: {
      od::array array;
      if (depth_left == 0) return {Key::kUnknown, "an ignored field nests too deep"};
      if (v.get_array().get(array)) return kMalformed;
      for (auto element : array) {
        od::value child;
        if (element.get(child)) return kMalformed;
        if (Problem p = check_ignored(child, strings, depth_left - 1)) return p;
      }
      return kOk;
    }
    case od::json_type::object: {
      od::object object;
      if (depth_left == 0) return {Key::kUnknown, "an ignored field nests too deep"};
      if (v.get_object().get(object)) return kMalformed;
      for (auto member : object) {
        std::string_view key;
        od::field* field = open_member(member, strings, key);
        if (!field) return kMalformed;
        if (Problem p = check_ignored(field->value(), strings, depth_left - 1)) return p;
      }
      return kOk;
    }
    case od::json_type::number: {
      // Only the grammar: an ignored number may be beyond what a double or a
      // 64-bit integer holds (1e999, 2^64), as JSON allows.
      std::string_view token = v.raw_json_token();
      return is_json_number(token.substr(0, token.find_last_not_of(" \t\n\r") + 1)) ? kOk
                                                                                    : kMalformed;
    }
    case od::json_type::string: {
      std::string_view s;
      return strings.value(v, s) ? kMalformed : kOk;
    }
    case od::json_type::boolean: {
      bool b;
      return v.get_bool().get(b) ? kMalformed : kOk;
    }
    case od::json_type::null: {
      bool is_null = false;
      return v.is_null().get(is_null) || !is_null ? kMalformed : kOk;
    }
  }
  return kMalformed;
}

// ---- reading the members of one message

// Reads the members of a message object into `out`, knowing the type (set by
// type()), and enforces the rules of PROTOCOL 3.2 on them. Every value it is
// given is consumed: On-Demand never skips a value the reader has seen, or
// malformed text after it could pass unseen.
class MessageReader {
 public:
  MessageReader(Strings& strings, const DecodeLimits& lim, msg::ClientMessage& out)
      : strings_(strings), lim_(lim), out_(out) {}

  bool typed() const { return typed_; }
  Problem type(od::value& v);
  void restart() { seen_ = 0; }  // before reading the members again from the first
  Problem member(Key key, od::value& v);
  Problem finish();

 private:
  Problem read_string(Key key, od::value& v, std::string_view& s);
  Problem read_unit(Key key, od::value& v, double& out);
  Problem read_status(od::value& v);
  Problem read_name(od::value& v);
  Problem read_presence(Key key, od::value& v);
  Problem read_chat(Key key, od::value& v);
  Problem read_history(Key key, od::value& v);
  Problem capture_client_id(od::value& v);

  Strings& strings_;
  const DecodeLimits& lim_;
  msg::ClientMessage& out_;
  std::uint16_t seen_ = 0;
  bool typed_ = false;
};

Problem MessageReader::type(od::value& v) {
  std::string_view s;
  if (Problem p = read_string(Key::kType, v, s)) return p;
  if (!lookup(kTypeNames, s, out_.type)) return {Key::kType, "unknown message type"};
  typed_ = true;
  seen_ |= bit(Key::kType);
  return kOk;
}

Problem MessageReader::member(Key key, od::value& v) {
  if (!(keys_of(out_.type) & bit(key))) {
    // Not a member of this type: `client_id` is kept when usable (for error
    // refs), anything else only has to be JSON.
    if (key == Key::kClientId) return capture_client_id(v);
    return check_ignored(v, strings_, unknown_value_depth_max);
  }
  if (seen_ & bit(key)) return {key, "appears more than once"};
  seen_ |= bit(key);
  switch (out_.type) {
    case msg::Type::kPresence:
      return read_presence(key, v);
    case msg::Type::kChat:
      return read_chat(key, v);
    case msg::Type::kHistory:
      return read_history(key, v);
    default:
      return type(v);  // the only key of a bare type; type() consumes it
  }
}

Problem MessageReader::finish() {
  if (out_.type == msg::Type::kChat) {
    if (!(seen_ & bit(Key::kText))) return {Key::kText, "missing"};
    if (out_.chat.has_client_id) out_.client_id = out_.chat.client_id;
  }
  return kOk;
}

Problem MessageReader::read_string(Key key, od::value& v, std::string_view& s) {
  switch (strings_.value(v, s)) {
    case simdjson::SUCCESS:
      return kOk;
    case simdjson::INCORRECT_TYPE:
      return {key, "must be a string"};
    default:
      return {key, "has an invalid escape sequence"};
  }
}

Problem MessageReader::read_unit(Key key, od::value& v, double& out) {
  double d;
  // The negated test also catches NaN, should a parser ever produce one.
  if (v.get_double().get(d) || !(d >= 0.0 && d <= 1.0)) return {key, "must be a number in [0,1]"};
  out = d + 0.0;  // -0 + 0 is +0: a client's -0 is stored and echoed as 0
  return kOk;
}

Problem MessageReader::read_status(od::value& v) {
  std::string_view s;
  if (Problem p = read_string(Key::kStatus, v, s)) return p;
  if (!lookup(kStatusNames, s, out_.presence.status)) {
    return {Key::kStatus, "must be online, away or busy"};
  }
  return kOk;
}

Problem MessageReader::read_name(od::value& v) {
  std::string_view s;
  if (Problem p = read_string(Key::kName, v, s)) return p;
  s = utf8::trim(s);
  if (s.empty()) return {Key::kName, "empty after trimming"};
  if (s.size() > limits::name_bytes_max) return {Key::kName, "longer than 64 bytes"};
  if (utf8::has_control(s)) return {Key::kName, "contains a control character"};
  out_.presence.name = s;
  return kOk;
}

Problem MessageReader::read_presence(Key key, od::value& v) {
  msg::Presence& p = out_.presence;
  switch (key) {
    case Key::kX:
      p.has |= msg::Presence::kHasX;
      return read_unit(key, v, p.x);
    case Key::kY:
      p.has |= msg::Presence::kHasY;
      return read_unit(key, v, p.y);
    case Key::kEmoji:
      p.has |= msg::Presence::kHasEmoji;
      if (Problem e = read_string(key, v, p.emoji)) return e;
      return p.emoji.size() > limits::emoji_bytes_max ? Problem{key, "longer than 32 bytes"} : kOk;
    case Key::kHand:
      p.has |= msg::Presence::kHasHand;
      return v.get_bool().get(p.hand) ? Problem{key, "must be true or false"} : kOk;
    case Key::kStatus:
      p.has |= msg::Presence::kHasStatus;
      return read_status(v);
    case Key::kStatusText:
      p.has |= msg::Presence::kHasStatusText;
      if (Problem e = read_string(key, v, p.status_text)) return e;
      p.status_text = utf8::trim(p.status_text);
      return utf8::count_code_points(p.status_text) > limits::status_text_chars_max
                 ? Problem{key, "longer than 100 characters"}
                 : kOk;
    case Key::kName:
      p.has |= msg::Presence::kHasName;
      return read_name(v);
    default:
      return type(v);
  }
}

Problem MessageReader::read_chat(Key key, od::value& v) {
  msg::Chat& chat = out_.chat;
  switch (key) {
    case Key::kText:
      if (Problem e = read_string(key, v, chat.text)) return e;
      chat.text = utf8::trim(chat.text);
      if (chat.text.empty()) return {key, "empty after trimming"};
      if (utf8::count_code_points(chat.text) > lim_.chat_chars_max) {
        return {key, "longer than the server's chat limit"};
      }
      return kOk;
    case Key::kClientId:
      chat.has_client_id = true;
      if (Problem e = read_string(key, v, chat.client_id)) return e;
      return chat.client_id.size() > limits::client_id_bytes_max
                 ? Problem{key, "longer than 64 bytes"}
                 : kOk;
    default:
      return type(v);
  }
}

Problem MessageReader::read_history(Key key, od::value& v) {
  std::uint64_t n;
  switch (key) {
    case Key::kBefore:
      if (v.get_uint64().get(n) || n == 0) return {key, "must be a positive integer"};
      out_.history.before = n;
      return kOk;
    case Key::kLimit:
      if (v.get_uint64().get(n) || n < 1 || n > limits::history_limit_max) {
        return {key, "must be an integer from 1 to 200"};
      }
      out_.history.limit = static_cast<std::uint32_t>(n);
      return kOk;
    default:
      return type(v);
  }
}

Problem MessageReader::capture_client_id(od::value& v) {
  od::json_type type;
  if (v.type().get(type)) return kMalformed;
  if (type != od::json_type::string) return check_ignored(v, strings_, unknown_value_depth_max);
  std::string_view s;
  if (strings_.value(v, s)) return kMalformed;
  if (s.size() <= limits::client_id_bytes_max) out_.client_id = s;
  return kOk;
}

// The first pass over the members. Until `type` is found, members are only
// checked as JSON. If `type` is the first member (as every client we know
// sends it), the members after it are read in this same pass; otherwise
// `again` asks the caller for a second pass, now that the type is known.
Problem first_pass(od::object& object, Strings& strings, MessageReader& reader, bool& again) {
  bool first = true;
  for (auto member : object) {
    std::string_view name;
    od::field* field = open_member(member, strings, name);
    if (!field) return kMalformed;
    const Key key = key_of(name);
    if (reader.typed()) {
      if (Problem p = reader.member(key, field->value())) return p;
    } else if (key == Key::kType) {
      if (Problem p = reader.type(field->value())) return p;
      if (!first) {
        again = true;
        return kOk;
      }
    } else {
      if (Problem p = check_ignored(field->value(), strings, unknown_value_depth_max)) return p;
    }
    first = false;
  }
  return reader.typed() ? kOk : Problem{Key::kType, "missing"};
}

Problem second_pass(od::object& object, Strings& strings, MessageReader& reader) {
  reader.restart();
  for (auto member : object) {
    std::string_view name;
    od::field* field = open_member(member, strings, name);
    if (!field) return kMalformed;
    if (Problem p = reader.member(key_of(name), field->value())) return p;
  }
  return kOk;
}

}  // namespace

struct Decoder::Impl {
  explicit Impl(std::size_t bytes_max)
      : parser(bytes_max),
        // A pass unescapes at most the message's bytes; simdjson's unescaper
        // may write one block (<= the padding) past the end of what it returns.
        unescaped(new std::uint8_t[bytes_max + 2 * padding()]),
        strings(parser, unescaped.get()),
        capacity(bytes_max) {
    // Allocating here, at start-up, is what keeps decode() allocation-free:
    // iterate() only allocates when a document exceeds the capacity.
    const simdjson::error_code e = parser.allocate(bytes_max);
    RC_ASSERT(e == simdjson::SUCCESS);
  }

  Problem decode(const std::uint8_t* data, std::size_t len, const DecodeLimits& lim,
                 msg::ClientMessage& out);
  std::string_view find_ref();

  od::parser parser;
  std::unique_ptr<std::uint8_t[]> unescaped;
  Strings strings;
  od::document doc;
  std::size_t capacity;
  bool doc_live = false;  // doc holds an indexed message that find_ref may rewind
};

Problem Decoder::Impl::decode(const std::uint8_t* data, std::size_t len, const DecodeLimits& lim,
                              msg::ClientMessage& out) {
  doc_live = false;
  if (len > capacity) return {Key::kUnknown, "message too large"};
  simdjson::padded_string_view json(reinterpret_cast<const char*>(data), len, len + padding());
  if (parser.iterate(json).get(doc)) return {Key::kUnknown, "not JSON"};
  doc_live = true;

  od::object object;
  simdjson::error_code e = doc.get_object().get(object);
  if (e == simdjson::INCORRECT_TYPE) return {Key::kUnknown, "not a JSON object"};
  if (e) return kMalformed;
  MessageReader reader(strings, lim, out);
  bool again = false;
  strings.start();
  if (Problem p = first_pass(object, strings, reader, again)) return p;
  if (again) {
    doc.rewind();
    strings.start();
    if (doc.get_object().get(object)) return kMalformed;
    if (Problem p = second_pass(object, strings, reader)) return p;
  }
  if (Problem p = reader.finish()) return p;
  // The object is fully read, so the only token left, if any, follows it.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return {Key::kUnknown, "content after the object"};
  }
  return kOk;
}

// Error path only: looks for a usable `client_id` among the members up to the
// first one that is not well-formed, so the error can carry it as `ref`.
std::string_view Decoder::Impl::find_ref() {
  if (!doc_live || !doc.is_alive()) return {};
  doc.rewind();
  strings.start();
  od::object object;
  if (doc.get_object().get(object)) return {};
  for (auto member : object) {
    std::string_view name;
    od::field* field = open_member(member, strings, name);
    if (!field) return {};
    if (name == "client_id") {
      std::string_view id;
      if (strings.value(field->value(), id) || id.size() > limits::client_id_bytes_max) return {};
      return id;
    }
    // A string is one token whatever its escapes (stage 1 matched its
    // quotes), so one with a bad escape does not hide what follows it.
    od::json_type type;
    if (field->value().type().get(type)) return {};
    if (type == od::json_type::string) continue;
    if (check_ignored(field->value(), strings, unknown_value_depth_max)) return {};
  }
  return {};
}

Decoder::Decoder(std::size_t message_bytes_max) {
  RC_ASSERT(message_bytes_max >= limits::message_bytes_min &&
            message_bytes_max <= limits::message_bytes_max);
  impl_ = std::make_unique<Impl>(message_bytes_max);
}

Decoder::~Decoder() = default;
Decoder::Decoder(Decoder&&) noexcept = default;
Decoder& Decoder::operator=(Decoder&&) noexcept = default;

bool Decoder::decode(const std::uint8_t* data, std::size_t len, const DecodeLimits& lim,
                     msg::ClientMessage& out, DecodeError& err) {
  // Member by member: GCC clears the whole struct with `rep stos`, whose
  // start-up cost is a tenth of a presence decode.
  out.type = msg::ClientMessage{}.type;
  out.presence = msg::Presence{};
  out.chat = msg::Chat{};
  out.history = msg::History{};
  out.client_id = {};
  const Problem p = impl_->decode(data, len, lim, out);
  if (!p) return true;
  err.message.clear();
  if (p.field != Key::kUnknown) {
    err.message.append(kKeyNames[static_cast<int>(p.field)]).append(": ");
  }
  err.message.append(p.what);
  err.ref.assign(impl_->find_ref());
  return false;
}

}  // namespace rc::json
