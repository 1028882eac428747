#include "protocol/json_decode.h"

#include <simdjson.h>

#include <string_view>
#include <utility>

#include "core/assert.h"
#include "protocol/utf8.h"

namespace rc::json {

static_assert(Decoder::padding() == simdjson::SIMDJSON_PADDING,
              "Decoder::padding() must match the simdjson this file is built with");

namespace {

namespace od = simdjson::ondemand;

// Every key the protocol gives a meaning to, whatever the message type. Which
// of them a given type reads is decided by the per-type readers below.
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

constexpr const char* kKeyNames[] = {"",     "type", "x",    "y",         "emoji",  "hand", "status",
                                     "status_text", "name", "text", "client_id", "before", "limit"};
static_assert(sizeof(kKeyNames) / sizeof(kKeyNames[0]) == static_cast<int>(Key::kLimit) + 1);

constexpr std::uint16_t bit(Key k) { return static_cast<std::uint16_t>(1u << static_cast<int>(k)); }

// The keys each message type defines (a duplicate of one of them is an error).
constexpr std::uint16_t kPresenceKeys = bit(Key::kType) | bit(Key::kX) | bit(Key::kY) |
                                        bit(Key::kEmoji) | bit(Key::kHand) | bit(Key::kStatus) |
                                        bit(Key::kStatusText) | bit(Key::kName);
constexpr std::uint16_t kChatKeys = bit(Key::kType) | bit(Key::kText) | bit(Key::kClientId);
constexpr std::uint16_t kHistoryKeys = bit(Key::kType) | bit(Key::kBefore) | bit(Key::kLimit);
constexpr std::uint16_t kBareKeys = bit(Key::kType);

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

// A broken rule, as static text: failing costs no allocation until the caller
// copies it into a DecodeError.
struct Problem {
  Key field = Key::kUnknown;   // kUnknown: the problem is with the message as a whole
  const char* what = nullptr;  // nullptr: no problem
  explicit operator bool() const { return what != nullptr; }
};

constexpr Problem kOk{};
constexpr Problem kMalformed{Key::kUnknown, "malformed JSON"};

bool type_of(std::string_view s, msg::Type& type) {
  if (s == "presence") type = msg::Type::kPresence;
  else if (s == "chat") type = msg::Type::kChat;
  else if (s == "history") type = msg::Type::kHistory;
  else if (s == "sync") type = msg::Type::kSync;
  else if (s == "ping") type = msg::Type::kPing;
  else if (s == "lower_hands") type = msg::Type::kLowerHands;
  else return false;
  return true;
}

// Checks that a value the message type does not use is well-formed JSON.
// On-Demand would skip it by counting brackets alone and so accept `[1 2]`,
// `tru` or `01`; walking it costs a little, and only when a client sends
// fields the protocol does not define.
Problem check_ignored(od::value v, std::size_t depth_left) {
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
        if (Problem p = check_ignored(child, depth_left - 1)) return p;
      }
      return kOk;
    }
    case od::json_type::object: {
      od::object object;
      if (depth_left == 0) return {Key::kUnknown, "an ignored field nests too deep"};
      if (v.get_object().get(object)) return kMalformed;
      for (auto member : object) {
        od::field field;
        std::string_view key;
        if (std::move(member).get(field) || field.unescaped_key().get(key)) return kMalformed;
        if (Problem p = check_ignored(field.value(), depth_left - 1)) return p;
      }
      return kOk;
    }
    case od::json_type::number: {
      od::number number;  // get_number rejects what simdjson's DOM rejects (1e999, 2^64)
      return v.get_number().get(number) ? kMalformed : kOk;
    }
    case od::json_type::string: {
      std::string_view s;  // unescaping checks the escapes
      return v.get_string().get(s) ? kMalformed : kOk;
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

// ---- field readers: each reads one value of the JSON type PROTOCOL 3.2 gives it

Problem read_string(Key key, od::value& v, std::string_view& s) {
  return v.get_string().get(s) ? Problem{key, "must be a string"} : kOk;
}

Problem read_unit(Key key, od::value& v, double& out) {
  double d;
  // The negated test also catches NaN, should a parser ever produce one.
  if (v.get_double().get(d) || !(d >= 0.0 && d <= 1.0)) return {key, "must be a number in [0,1]"};
  out = d + 0.0;  // -0 + 0 is +0: a client's -0 is stored and echoed as 0
  return kOk;
}

Problem read_client_id(od::value& v, std::string_view& out) {
  if (Problem p = read_string(Key::kClientId, v, out)) return p;
  if (out.size() > limits::client_id_bytes_max) return {Key::kClientId, "longer than 64 bytes"};
  return kOk;
}

// `client_id` on a message type that does not define it: kept when usable
// (for error refs), otherwise ignored like any unknown field.
Problem capture_client_id(od::value& v, std::string_view& out) {
  od::json_type type;
  if (v.type().get(type)) return kMalformed;
  if (type != od::json_type::string) return check_ignored(v, unknown_value_depth_max);
  std::string_view s;
  if (v.get_string().get(s)) return kMalformed;
  if (s.size() <= limits::client_id_bytes_max) out = s;
  return kOk;
}

Problem read_status(od::value& v, msg::UserStatus& status) {
  std::string_view s;
  if (Problem p = read_string(Key::kStatus, v, s)) return p;
  if (s == "online") status = msg::UserStatus::kOnline;
  else if (s == "away") status = msg::UserStatus::kAway;
  else if (s == "busy") status = msg::UserStatus::kBusy;
  else return {Key::kStatus, "must be online, away or busy"};
  return kOk;
}

Problem read_name(od::value& v, std::string_view& name) {
  std::string_view s;
  if (Problem p = read_string(Key::kName, v, s)) return p;
  s = utf8::trim(s);
  if (s.empty()) return {Key::kName, "empty after trimming"};
  if (s.size() > limits::name_bytes_max) return {Key::kName, "longer than 64 bytes"};
  if (utf8::has_control(s)) return {Key::kName, "contains a control character"};
  name = s;
  return kOk;
}

Problem read_presence_field(Key key, od::value& v, msg::Presence& p) {
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
      return read_status(v, p.status);
    case Key::kStatusText: {
      p.has |= msg::Presence::kHasStatusText;
      if (Problem e = read_string(key, v, p.status_text)) return e;
      p.status_text = utf8::trim(p.status_text);
      return utf8::count_code_points(p.status_text) > limits::status_text_chars_max
                 ? Problem{key, "longer than 100 characters"}
                 : kOk;
    }
    case Key::kName:
      p.has |= msg::Presence::kHasName;
      return read_name(v, p.name);
    default:
      return kOk;  // not a key of this type: read_members never passes one
  }
}

Problem read_chat_field(Key key, od::value& v, const DecodeLimits& lim, msg::Chat& chat) {
  switch (key) {
    case Key::kText: {
      if (Problem e = read_string(key, v, chat.text)) return e;
      chat.text = utf8::trim(chat.text);
      if (chat.text.empty()) return {key, "empty after trimming"};
      if (utf8::count_code_points(chat.text) > lim.chat_chars_max) {
        return {key, "longer than the server's chat limit"};
      }
      return kOk;
    }
    case Key::kClientId:
      chat.has_client_id = true;
      return read_client_id(v, chat.client_id);
    default:
      return kOk;  // not a key of this type: read_members never passes one
  }
}

Problem read_history_field(Key key, od::value& v, msg::History& h) {
  std::uint64_t n;
  switch (key) {
    case Key::kBefore:
      if (v.get_uint64().get(n) || n == 0) return {key, "must be a positive integer"};
      h.before = n;
      return kOk;
    case Key::kLimit:
      if (v.get_uint64().get(n) || n < 1 || n > limits::history_limit_max) {
        return {key, "must be an integer from 1 to 200"};
      }
      h.limit = static_cast<std::uint32_t>(n);
      return kOk;
    default:
      return kOk;  // not a key of this type: read_members never passes one
  }
}

// Walks every member of the message object once. Keys in `owned` (the ones
// the message type defines) go to read(key, value) at most once each; any
// other key is checked as ignored JSON, except that a usable `client_id` is
// kept for error refs.
template <typename Read>
Problem read_members(od::object& object, std::uint16_t owned, msg::ClientMessage& out,
                     Read&& read) {
  std::uint16_t seen = 0;
  for (auto member : object) {
    od::field field;
    std::string_view name;
    if (std::move(member).get(field) || field.unescaped_key().get(name)) return kMalformed;
    const Key key = key_of(name);
    if (owned & bit(key)) {
      if (seen & bit(key)) return {key, "appears more than once"};
      seen |= bit(key);
      if (key == Key::kType) {
        // Already read by find_type, but consumed again: On-Demand must never
        // skip a value here, or malformed text after it could pass unseen.
        std::string_view type;
        if (field.value().get_string().get(type)) return kMalformed;
        continue;
      }
      if (Problem p = read(key, field.value())) return p;
    } else if (key == Key::kClientId) {
      if (Problem p = capture_client_id(field.value(), out.client_id)) return p;
    } else {
      if (Problem p = check_ignored(field.value(), unknown_value_depth_max)) return p;
    }
  }
  return kOk;
}

// The first of the two passes: find `type`, which decides how every other
// member is read. Clients put it first, so this usually reads one member.
// Members before it are checked, not skipped: skipping malformed JSON can
// carry On-Demand past the last token into the padding, whose bytes would
// then decide which error is reported.
Problem find_type(od::object& object, msg::Type& type) {
  for (auto member : object) {
    od::field field;
    std::string_view name;
    if (std::move(member).get(field) || field.unescaped_key().get(name)) return kMalformed;
    if (name != "type") {
      if (Problem p = check_ignored(field.value(), unknown_value_depth_max)) return p;
      continue;
    }
    std::string_view s;
    if (field.value().get_string().get(s)) return {Key::kType, "must be a string"};
    return type_of(s, type) ? kOk : Problem{Key::kType, "unknown message type"};
  }
  return {Key::kType, "missing"};
}

Problem read_message(od::object& object, const DecodeLimits& lim, msg::ClientMessage& out) {
  switch (out.type) {
    case msg::Type::kPresence:
      return read_members(object, kPresenceKeys, out, [&](Key key, od::value& v) {
        return read_presence_field(key, v, out.presence);
      });
    case msg::Type::kChat: {
      Problem p = read_members(object, kChatKeys, out, [&](Key key, od::value& v) {
        return read_chat_field(key, v, lim, out.chat);
      });
      if (p) return p;
      if (out.chat.text.empty()) return {Key::kText, "missing"};
      if (out.chat.has_client_id) out.client_id = out.chat.client_id;
      return kOk;
    }
    case msg::Type::kHistory:
      return read_members(object, kHistoryKeys, out, [&](Key key, od::value& v) {
        return read_history_field(key, v, out.history);
      });
    case msg::Type::kSync:
    case msg::Type::kPing:
    case msg::Type::kLowerHands:
      return read_members(object, kBareKeys, out, [](Key, od::value&) { return kOk; });
  }
  return kOk;
}

}  // namespace

struct Decoder::Impl {
  explicit Impl(std::size_t bytes_max) : parser(bytes_max), capacity(bytes_max) {
    // Allocating here, at start-up, is what keeps decode() allocation-free:
    // iterate() only allocates when a document exceeds the capacity.
    const simdjson::error_code e = parser.allocate(bytes_max);
    RC_ASSERT(e == simdjson::SUCCESS);
  }

  Problem decode(const std::uint8_t* data, std::size_t len, const DecodeLimits& lim,
                 msg::ClientMessage& out);
  std::string_view find_ref();

  od::parser parser;
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
  if (Problem p = find_type(object, out.type)) return p;

  // Rewinding (rather than resetting the object) also rewinds the parser's
  // string buffer, which holds one pass's unescaped strings, not two.
  doc.rewind();
  if (doc.get_object().get(object)) return kMalformed;
  if (Problem p = read_message(object, lim, out)) return p;
  // The object is fully read, so the only token left, if any, follows it.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return {Key::kUnknown, "content after the object"};
  }
  return kOk;
}

// Error path only: looks for a usable `client_id` anywhere before the point
// where the message stops being readable, so the error can carry it as `ref`.
std::string_view Decoder::Impl::find_ref() {
  if (!doc_live || !doc.is_alive()) return {};
  doc.rewind();
  od::object object;
  if (doc.get_object().get(object)) return {};
  for (auto member : object) {
    od::field field;
    std::string_view name;
    if (std::move(member).get(field) || field.unescaped_key().get(name)) return {};
    if (name != "client_id") {
      if (check_ignored(field.value(), unknown_value_depth_max)) return {};  // as in find_type
      continue;
    }
    std::string_view id;
    if (field.value().get_string().get(id) || id.size() > limits::client_id_bytes_max) return {};
    return id;
  }
  return {};
}

Decoder::Decoder(std::size_t message_bytes_max) {
  RC_ASSERT(message_bytes_max >= limits::message_bytes_min &&
            message_bytes_max <= limits::message_bytes_max);
  impl_ = std::make_unique<Impl>(message_bytes_max);
}

Decoder::~Decoder() = default;

bool Decoder::decode(const std::uint8_t* data, std::size_t len, const DecodeLimits& lim,
                     msg::ClientMessage& out, DecodeError& err) {
  out = msg::ClientMessage{};
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
