// libFuzzer target for JWT verification (protocol/jwt.h) with a fixed secret.
//
// The first byte picks what the rest is:
//   even: a token as it would arrive in an Authorization header;
//   odd:  "<header JSON>\n<payload JSON>", which this target encodes and signs
//         with the secret, so that the JSON readers and the claim checks
//         behind the MAC are reached too (random bytes never carry a valid MAC).
//
// For every input:
//   - verify() does not crash and answers the same when asked twice;
//   - a failure has a message, which does not contain the token;
//   - an acceptance implies a token of at most token_bytes_max bytes in three
//     parts, and claims inside PROTOCOL section 2's rules, in date at `now`;
//   - accepted claims, signed again with sign(), verify to the same claims.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "core/crypto.h"
#include "protocol/jwt.h"
#include "protocol/route.h"
#include "protocol/utf8.h"

namespace {

using rc::jwt::Claims;
using rc::jwt::Error;

#define CHECK(cond)                                                                    \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "jwt_fuzz: check failed: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

constexpr std::string_view kSecret = "fuzz-secret-0123456789abcdefghij";
constexpr std::int64_t kNow = 1763798400;

std::string signed_token(std::string_view header, std::string_view payload) {
  std::string token =
      rc::crypto::base64url_encode(header) + "." + rc::crypto::base64url_encode(payload);
  const auto mac = rc::crypto::hmac_sha256(kSecret, token);
  return token + "." +
         rc::crypto::base64url_encode(
             std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

bool same(const Claims& a, const Claims& b) {
  return a.sub == b.sub && a.name == b.name && a.has_name == b.has_name && a.role == b.role &&
         a.rooms == b.rooms && a.all_rooms == b.all_rooms && a.exp_s == b.exp_s &&
         a.nbf_s == b.nbf_s;
}

bool same(const std::variant<Claims, Error>& a, const std::variant<Claims, Error>& b) {
  if (a.index() != b.index()) return false;
  if (const Claims* c = std::get_if<Claims>(&a)) return same(*c, std::get<Claims>(b));
  const Error &e = std::get<Error>(a), &f = std::get<Error>(b);
  return e.why == f.why && e.message == f.message;
}

void check_claims(const Claims& c) {
  CHECK(rc::http::valid_user_id(c.sub));
  CHECK(rc::http::valid_name(c.name));
  CHECK(rc::utf8::trim(c.name) == c.name);
  if (!c.has_name) CHECK(c.name == c.sub);
  CHECK(c.rooms.size() <= rc::jwt::rooms_max);
  for (const std::string& room : c.rooms) CHECK(rc::http::valid_room_id(room));
  CHECK(c.exp_s >= 0 && c.exp_s <= rc::jwt::numeric_date_max);
  CHECK(c.nbf_s >= 0 && c.nbf_s <= rc::jwt::numeric_date_max);
  CHECK(kNow <= c.exp_s + rc::jwt::kSkewS);
  CHECK(c.nbf_s == 0 || kNow >= c.nbf_s - rc::jwt::kSkewS);
}

std::size_t dots(std::string_view s) {
  std::size_t n = 0;
  for (char ch : s) n += ch == '.';
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string token;
  if (data[0] % 2 == 0) {
    token.assign(rest);
  } else {
    const std::size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) return 0;
    token = signed_token(rest.substr(0, nl), rest.substr(nl + 1));
  }

  const auto result = rc::jwt::verify(token, kSecret, kNow);
  CHECK(same(result, rc::jwt::verify(token, kSecret, kNow)));

  if (const Error* e = std::get_if<Error>(&result)) {
    CHECK(!e->message.empty());
    // No message has two dots, so a token that has them cannot be one by chance.
    if (dots(token) >= 2) CHECK(e->message.find(token) == std::string::npos);
    return 0;
  }
  const Claims& c = std::get<Claims>(result);
  CHECK(token.size() <= rc::jwt::token_bytes_max);
  CHECK(dots(token) == 2);
  check_claims(c);

  // Re-encoding can grow a name (U+2028 is written escaped), so a token near
  // the limit may not fit once signed again.
  const std::string again = rc::jwt::sign(c, kSecret);
  if (again.size() <= rc::jwt::token_bytes_max) {
    const auto back = rc::jwt::verify(again, kSecret, kNow);
    CHECK(std::holds_alternative<Claims>(back));
    CHECK(same(c, std::get<Claims>(back)));
  }
  return 0;
}
