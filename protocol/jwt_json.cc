#include "protocol/jwt_json.h"

#include <simdjson.h>

#include <string>
#include <string_view>

namespace rc::jwt {

namespace {

namespace dom = simdjson::dom;

// The DOM parser rather than On-Demand (which json_decode.cc uses): DOM
// validates the whole document, ignored members included, before we look at
// it, so a token with `[1 2]` or `tru` in an unknown claim is malformed JSON
// without a hand-written walker. A token is parsed once per upgrade, so the
// extra cost of building the tape does not matter.
Status parse_object(dom::parser& parser, std::string_view json, dom::object& out) {
  dom::element root;
  if (parser.parse(json.data(), json.size()).get(root)) return Status::error("not JSON");
  if (root.get_object().get(out)) return Status::error("not a JSON object");
  return Status::ok();
}

// The position of `key` in `keys`, or -1 for a member we ignore. Keys are
// compared unescaped: "\u0061lg" is alg.
template <std::size_t N>
int key_index(const std::string_view (&keys)[N], std::string_view key) {
  for (std::size_t i = 0; i < N; ++i) {
    if (keys[i] == key) return static_cast<int>(i);
  }
  return -1;
}

// Marks known member `k` seen; false when it already was (a duplicate).
bool first_time(unsigned& seen, int k) {
  const unsigned bit = 1u << k;
  if (seen & bit) return false;
  seen |= bit;
  return true;
}

Status duplicate(std::string_view what, std::string_view key) {
  return Status::error(std::string(what) + " \"" + std::string(key) + "\" appears twice");
}

Field read_string(dom::element v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s)) return Field::kWrongType;
  out.assign(s);
  return Field::kOk;
}

Field read_number(dom::element v, Number& out) {
  switch (v.type()) {
    case dom::element_type::INT64:
      out.is_integer = true;
      out.integer = v.get_int64().value_unsafe();
      return Field::kOk;
    case dom::element_type::UINT64:  // only integers above INT64_MAX land here
      out.is_integer = false;
      out.real = static_cast<double>(v.get_uint64().value_unsafe());
      return Field::kOk;
    case dom::element_type::DOUBLE:
      out.is_integer = false;
      out.real = v.get_double().value_unsafe();
      return Field::kOk;
    default:
      return Field::kWrongType;
  }
}

// The size is checked before any string is copied, so an oversized array
// costs no allocation beyond the parse.
Field read_rooms(dom::element v, std::size_t limit, std::vector<std::string>& out) {
  dom::array array;
  if (v.get_array().get(array)) return Field::kWrongType;
  if (array.size() > limit) return Field::kTooMany;
  out.reserve(array.size());
  for (dom::element e : array) {
    std::string_view s;
    if (e.get_string().get(s)) {
      out.clear();
      return Field::kWrongType;
    }
    out.emplace_back(s);
  }
  return Field::kOk;
}

}  // namespace

Status read_header_json(std::string_view json, HeaderJson& out) {
  dom::parser parser;
  dom::object object;
  if (Status s = parse_object(parser, json, object); !s) return s;
  static constexpr std::string_view kKeys[] = {"alg", "typ", "crit"};
  unsigned seen = 0;
  for (const dom::key_value_pair member : object) {
    const int k = key_index(kKeys, member.key);
    if (k < 0) continue;
    if (!first_time(seen, k)) return duplicate("header member", kKeys[k]);
    if (k == 0) out.alg = read_string(member.value, out.alg_value);
    if (k == 1) out.typ = read_string(member.value, out.typ_value);
    if (k == 2) out.has_crit = true;
  }
  return Status::ok();
}

Status read_payload_json(std::string_view json, std::size_t rooms_limit, PayloadJson& out) {
  dom::parser parser;
  dom::object object;
  if (Status s = parse_object(parser, json, object); !s) return s;
  static constexpr std::string_view kKeys[] = {"sub", "name", "role", "exp", "nbf", "rooms"};
  unsigned seen = 0;
  for (const dom::key_value_pair member : object) {
    const int k = key_index(kKeys, member.key);
    if (k < 0) continue;
    if (!first_time(seen, k)) return duplicate("claim", kKeys[k]);
    const dom::element v = member.value;
    switch (k) {
      case 0:
        out.sub = read_string(v, out.sub_value);
        break;
      case 1:
        out.name = read_string(v, out.name_value);
        break;
      case 2:
        out.role = read_string(v, out.role_value);
        break;
      case 3:
        out.exp = read_number(v, out.exp_value);
        break;
      case 4:
        out.nbf = read_number(v, out.nbf_value);
        break;
      default:
        out.rooms = read_rooms(v, rooms_limit, out.rooms_value);
        break;
    }
  }
  return Status::ok();
}

}  // namespace rc::jwt
