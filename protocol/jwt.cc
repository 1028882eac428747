#include "protocol/jwt.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

#include "core/assert.h"
#include "core/crypto.h"
#include "protocol/json_writer.h"
#include "protocol/jwt_json.h"
#include "protocol/route.h"
#include "protocol/utf8.h"

namespace rc::jwt {

namespace {

constexpr std::string_view kSignedHeader = R"({"alg":"HS256","typ":"JWT"})";

Error fail(Failure why, std::string message) {
  return Error{why, std::move(message)};
}

// The three decoded parts and the signing input (header64 "." payload64),
// which the MAC covers in its encoded form, as RFC 7515 5.2 says.
struct Decoded {
  std::string_view signing_input;
  std::string header, payload, signature;
};

// Splits on '.' and decodes every part before anything is judged, so that a
// token that is not even well-formed is kMalformed whatever else is wrong
// with it. Messages name the part, never its bytes.
std::optional<Error> decode_parts(std::string_view token, Decoded& out) {
  const std::size_t dot1 = token.find('.');
  const std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return fail(Failure::kMalformed, "a token has exactly three parts separated by '.'");
  }
  const std::string_view parts[3] = {token.substr(0, dot1), token.substr(dot1 + 1, dot2 - dot1 - 1),
                                     token.substr(dot2 + 1)};
  std::string* targets[3] = {&out.header, &out.payload, &out.signature};
  constexpr const char* kNames[3] = {"header", "payload", "signature"};
  for (int i = 0; i < 3; ++i) {
    std::optional<std::string> bytes = crypto::base64url_decode(parts[i]);
    if (!bytes) {
      return fail(Failure::kMalformed,
                  std::string(kNames[i]) + " is not base64url without padding");
    }
    *targets[i] = std::move(*bytes);
  }
  out.signing_input = token.substr(0, dot2);
  return std::nullopt;
}

// RFC 7515 4.1.9: media type names are case-insensitive, and "application/"
// may be left out.
bool typ_is_jwt(std::string_view typ) {
  auto equal_ci = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             const char lx = (x >= 'A' && x <= 'Z') ? static_cast<char>(x - 'A' + 'a') : x;
             return lx == y;
           });
  };
  return equal_ci(typ, "jwt") || equal_ci(typ, "application/jwt");
}

std::optional<Error> check_header(std::string_view header_json) {
  HeaderJson h;
  if (Status s = read_header_json(header_json, h); !s) {
    return fail(Failure::kMalformed, "header: " + s.message());
  }
  // The algorithm is judged first: a forged "none" token is the attack this
  // check exists for, and it should be reported as what it is.
  if (h.alg != Field::kOk || h.alg_value != "HS256") {
    return fail(Failure::kBadAlgorithm, "alg must be HS256");
  }
  if (h.typ == Field::kWrongType || (h.typ == Field::kOk && !typ_is_jwt(h.typ_value))) {
    return fail(Failure::kMalformed, "typ, when present, must be JWT");
  }
  if (h.has_crit) return fail(Failure::kMalformed, "crit lists extensions this server lacks");
  return std::nullopt;
}

// A NumericDate (RFC 7519 2) as whole seconds in [0, numeric_date_max].
// Fractions round down (exp) or up (nbf): with a whole `now`, comparing the
// rounded value gives the same answer as comparing the real one.
bool whole_seconds(const Number& n, bool round_up, std::int64_t& out) {
  if (n.is_integer) {
    if (n.integer < 0 || n.integer > numeric_date_max) return false;
    out = n.integer;
    return true;
  }
  // Written so that NaN fails too; numeric_date_max is exact in a double.
  if (!(n.real >= 0.0 && n.real <= static_cast<double>(numeric_date_max))) return false;
  out = static_cast<std::int64_t>(round_up ? std::ceil(n.real) : std::floor(n.real));
  return true;
}

std::optional<Error> bad_claims(std::string message) {
  return fail(Failure::kBadClaims, std::move(message));
}

std::optional<Error> check_identity(PayloadJson& p, Claims& c) {
  if (p.sub == Field::kAbsent) return bad_claims("sub is missing");
  if (p.sub != Field::kOk || !http::valid_user_id(p.sub_value)) {
    return bad_claims("sub must be 1-64 bytes of [A-Za-z0-9_.-]");
  }
  c.sub = std::move(p.sub_value);
  if (p.name != Field::kAbsent) {
    const std::string_view trimmed =
        p.name == Field::kOk ? utf8::trim(p.name_value) : std::string_view();
    if (!http::valid_name(trimmed)) {
      return bad_claims("name must be 1-64 bytes of UTF-8 without control characters");
    }
    c.name.assign(trimmed);
    c.has_name = true;
  } else {
    c.name = c.sub;
  }
  if (p.role != Field::kAbsent) {
    if (p.role == Field::kOk && p.role_value == "teacher") {
      c.role = Role::kTeacher;
    } else if (p.role != Field::kOk || p.role_value != "student") {
      return bad_claims("role must be teacher or student");
    }
  }
  return std::nullopt;
}

std::optional<Error> check_rooms(PayloadJson& p, Claims& c) {
  switch (p.rooms) {
    case Field::kAbsent:
      return bad_claims("rooms is missing");
    case Field::kWrongType:
      return bad_claims("rooms must be an array of strings");
    case Field::kTooMany:
      return bad_claims("rooms has more than 1000 entries");
    case Field::kOk:
      break;
  }
  c.rooms.reserve(p.rooms_value.size());
  for (std::string& room : p.rooms_value) {
    if (room == "*") {
      c.all_rooms = true;
    } else if (http::valid_room_id(room)) {
      c.rooms.push_back(std::move(room));
    } else {
      return bad_claims("rooms entries must be \"*\" or 1-64 bytes of [A-Za-z0-9_-]");
    }
  }
  return std::nullopt;
}

std::optional<Error> check_dates(const PayloadJson& p, Claims& c) {
  if (p.exp == Field::kAbsent) return bad_claims("exp is missing");
  if (p.exp != Field::kOk || !whole_seconds(p.exp_value, false, c.exp_s)) {
    return bad_claims("exp must be a number of seconds from 0 to 2^53");
  }
  if (p.nbf != Field::kAbsent &&
      (p.nbf != Field::kOk || !whole_seconds(p.nbf_value, true, c.nbf_s))) {
    return bad_claims("nbf must be a number of seconds from 0 to 2^53");
  }
  return std::nullopt;
}

std::optional<Error> check_time(const Claims& c, std::int64_t now_s) {
  // No overflow: exp and nbf are at most 2^53. now_s is whatever the caller
  // passes, so it stays alone on its side of each comparison.
  if (now_s > c.exp_s + kSkewS) return fail(Failure::kExpired, "token expired");
  if (c.nbf_s != 0 && now_s < c.nbf_s - kSkewS) {
    return fail(Failure::kNotYetValid, "token not valid yet (nbf)");
  }
  return std::nullopt;
}

std::string_view as_view(const std::array<std::uint8_t, 32>& mac) {
  return {reinterpret_cast<const char*>(mac.data()), mac.size()};
}

}  // namespace

bool Claims::allows(std::string_view room) const {
  return all_rooms || std::find(rooms.begin(), rooms.end(), room) != rooms.end();
}

std::variant<Claims, Error> verify(std::string_view token, std::string_view secret,
                                   std::int64_t now_s) {
  // An empty key would make the MAC something anyone can compute.
  RC_ASSERT(!secret.empty());
  if (token.size() > token_bytes_max) {
    return fail(Failure::kMalformed, "token longer than 8192 bytes");
  }
  Decoded d;
  if (auto e = decode_parts(token, d)) return *std::move(e);
  if (auto e = check_header(d.header)) return *std::move(e);
  const auto mac = crypto::hmac_sha256(secret, d.signing_input);
  if (!crypto::constant_time_equal(as_view(mac), d.signature)) {
    return fail(Failure::kBadSignature, "signature does not match");
  }

  PayloadJson p;
  if (Status s = read_payload_json(d.payload, rooms_max, p); !s) {
    return fail(Failure::kMalformed, "payload: " + s.message());
  }
  Claims c;
  if (auto e = check_identity(p, c)) return *std::move(e);
  if (auto e = check_rooms(p, c)) return *std::move(e);
  if (auto e = check_dates(p, c)) return *std::move(e);
  if (auto e = check_time(c, now_s)) return *std::move(e);
  return c;
}

std::string sign(const Claims& c, std::string_view secret) {
  RC_ASSERT(!secret.empty());
  RC_ASSERT(utf8::valid(c.sub) && utf8::valid(c.name));
  std::string payload;
  json::Writer w(payload);
  w.begin_object().field("sub", std::string_view(c.sub));
  if (c.has_name) w.field("name", std::string_view(c.name));
  w.field("role", c.role == Role::kTeacher ? "teacher" : "student");
  w.key("rooms").begin_array();
  for (const std::string& room : c.rooms) {
    RC_ASSERT(utf8::valid(room));
    w.value(std::string_view(room));
  }
  if (c.all_rooms) w.value("*");
  w.end_array();
  w.field("exp", c.exp_s);
  if (c.nbf_s != 0) w.field("nbf", c.nbf_s);
  w.end_object();

  std::string token = crypto::base64url_encode(kSignedHeader);
  token += '.';
  token += crypto::base64url_encode(payload);
  const auto mac = crypto::hmac_sha256(secret, token);
  token += '.';
  token += crypto::base64url_encode(as_view(mac));
  return token;
}

Result<std::string> load_secret(const std::string& path) {
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, Closer> file(std::fopen(path.c_str(), "rb"));
  if (!file) return Status::error("cannot open " + path + ": " + std::strerror(errno));

  std::string bytes;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, file.get())) > 0) {
    bytes.append(buf, n);
    if (bytes.size() > secret_file_bytes_max) {
      return Status::error(path + " is larger than 65536 bytes: not a secret file");
    }
  }
  if (std::ferror(file.get())) {
    return Status::error("cannot read " + path + ": " + std::strerror(errno));
  }

  // The file usually ends in a newline an editor added; the secret is what
  // comes before it, inner and leading whitespace included.
  const std::size_t end = bytes.find_last_not_of(" \t\n\v\f\r");
  if (end == std::string::npos) return Status::error(path + " holds no secret (only whitespace)");
  bytes.resize(end + 1);
  return bytes;
}

std::string_view failure_name(Failure why) {
  switch (why) {
    case Failure::kMalformed:
      return "malformed";
    case Failure::kBadAlgorithm:
      return "bad_algorithm";
    case Failure::kBadSignature:
      return "bad_signature";
    case Failure::kExpired:
      return "expired";
    case Failure::kNotYetValid:
      return "not_yet_valid";
    case Failure::kBadClaims:
      return "bad_claims";
  }
  return "unknown";
}

}  // namespace rc::jwt
