#pragma once
// The JSON half of JWT verification (protocol/jwt.h): reads a token's decoded
// header or payload into plain structs, checking JSON types only. What the
// values must be (alg HS256, a valid user id, dates in range) is decided by
// jwt.cc.
//
// jwt_json.cc is the only simdjson user besides protocol/json_decode.cc; it
// keeps simdjson out of this header and out of jwt.cc.
//
// Rules shared by both readers (a broken one is an error Status):
//   - the text is exactly one JSON object (RFC 8259: fully validated, UTF-8,
//     nothing but whitespace after it);
//   - a member these readers know appears at most once;
//   - other members are ignored, whatever their (well-formed) value.
// Pure; any thread; allocates (the parser's buffers and the strings copied out).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace rc::jwt {

// What a known member held.
enum class Field : std::uint8_t {
  kAbsent,     // not in the object
  kOk,         // present with the JSON type asked for; the value is filled in
  kWrongType,  // present with another type (null included)
  kTooMany,    // rooms only: an array of more than the allowed entries
};

// A JSON number as written: an integer that fits int64, or any other number.
struct Number {
  bool is_integer = false;
  std::int64_t integer = 0;  // when is_integer
  double real = 0.0;         // otherwise (fractions, exponents, integers above INT64_MAX)
};

struct HeaderJson {
  Field alg = Field::kAbsent;  // string
  std::string alg_value;
  Field typ = Field::kAbsent;  // string
  std::string typ_value;
  bool has_crit = false;  // "crit" present, whatever its value
};

struct PayloadJson {
  Field sub = Field::kAbsent;  // string
  std::string sub_value;
  Field name = Field::kAbsent;  // string
  std::string name_value;
  Field role = Field::kAbsent;  // string
  std::string role_value;
  Field exp = Field::kAbsent;  // number
  Number exp_value;
  Field nbf = Field::kAbsent;  // number
  Number nbf_value;
  // Array of strings: kWrongType if it is not an array or an element is not a
  // string; kTooMany (and rooms_value left empty) past the reader's limit.
  Field rooms = Field::kAbsent;
  std::vector<std::string> rooms_value;
};

Status read_header_json(std::string_view json, HeaderJson& out);
// `rooms_limit`: the most entries `rooms` may have before it is kTooMany.
Status read_payload_json(std::string_view json, std::size_t rooms_limit, PayloadJson& out);

}  // namespace rc::jwt
