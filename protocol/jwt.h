#pragma once
// JWT verification (PROTOCOL.md section 2): who a Bearer token says its holder
// is, after checking that the server's secret signed it and that it is in date.
//
// Contract of verify()
//   Structure (else kMalformed): at most token_bytes_max bytes; exactly three
//   parts separated by '.'; each part strict base64url without padding
//   (core/crypto.h: '=', '+', '/', stray bits and whitespace are rejected, so
//   a token has exactly one spelling); header and payload each one JSON object
//   (RFC 8259, UTF-8), in which a member verify() reads may appear only once
//   (a duplicate is rejected, not resolved: parsers disagree on which wins).
//   Header: "alg" must be the string "HS256", else kBadAlgorithm ("none",
//   "RS256", "HS512", a missing or non-string alg alike). "typ", when present,
//   must be "JWT" or "application/jwt" in any case (RFC 7515 4.1.9), else
//   kMalformed: a token typed as something else (an "at+jwt" access token, a
//   logout token) is not meant for us, and a typ we would ignore is how one
//   kind of token gets replayed as another (RFC 8725 3.11). "crit" is rejected
//   (kMalformed): we implement no extension, and RFC 7515 4.1.11 requires
//   refusing a token that lists one.
//   Signature: HMAC-SHA256(secret, header64 "." payload64), 32 bytes, compared
//   in constant time, else kBadSignature. It is checked before the payload is
//   parsed: claims of an unsigned payload are never looked at.
//   Claims (else kBadClaims): sub a string, valid_user_id; rooms an array of
//   at most rooms_max strings, each valid_room_id or "*" (an empty array is
//   allowed and allows nothing; duplicates are kept); exp a number in
//   [0, numeric_date_max]; optional nbf, the same; optional name a string that
//   is valid_name once trimmed (PROTOCOL section 3 trimming); optional role
//   "teacher" or "student". `null` is a wrong type, not an absence. Other
//   members (iat, iss, aud, jti, ...) are ignored: the server has no issuer or
//   audience configured to check them against.
//   Time: exp is rounded down and nbf up to whole seconds, which makes the
//   checks below on whole seconds exactly the checks on the real values.
//   now_s > exp + kSkewS -> kExpired; now_s < nbf - kSkewS -> kNotYetValid.
//   Order: size, parts and base64url, header, signature, payload JSON,
//   claims, time; the first rule broken names the failure.
//   Every failure is an HTTP 401 for the caller; a room not covered by the
//   claims (Claims::allows) is the caller's 403.
//
// Thread safety: every function may be called from any thread; none keeps
// state. verify() allocates (the claims' strings and the JSON parser's
// buffers): it runs once per ticket or upgrade, not per frame.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/status.h"

namespace rc::jwt {

// Limits (PROTOCOL section 2; see verify()).
inline constexpr std::size_t token_bytes_max = 8192;  // a longer token is kMalformed
inline constexpr std::size_t rooms_max = 1000;        // more entries in `rooms` is kBadClaims
inline constexpr std::int64_t numeric_date_max = std::int64_t{1} << 53;  // exact in a double
inline constexpr std::int64_t kSkewS = 30;                   // clock skew allowed on exp and nbf
inline constexpr std::size_t secret_file_bytes_max = 65536;  // load_secret refuses larger files

enum class Role : std::uint8_t { kStudent, kTeacher };

struct Claims {
  std::string sub;        // a valid user id: 1-64 bytes of [A-Za-z0-9_.-]
  std::string name;       // trimmed `name`, or sub when absent
  bool has_name = false;  // the token carried a name (then presence cannot rename)
  Role role = Role::kStudent;
  std::vector<std::string> rooms;  // the room ids listed, in order, "*" left out
  bool all_rooms = false;          // "*" appeared anywhere in `rooms`
  std::int64_t exp_s = 0;          // seconds since the epoch
  std::int64_t nbf_s = 0;          // 0 when absent
  // True when the claims cover `room` (all_rooms, or room is listed).
  bool allows(std::string_view room) const;
};

enum class Failure : std::uint8_t {
  kMalformed,
  kBadAlgorithm,
  kBadSignature,
  kExpired,
  kNotYetValid,
  kBadClaims,
};

// `message` says which rule failed, for logs and the 401 body. It never holds
// the token or any part of it (a log line must not become a credential).
struct Error {
  Failure why;
  std::string message;
};

// Verifies a compact JWS (see the contract above) against `secret` at time
// now_s (seconds since the epoch) and returns its claims or why it fails.
// An empty secret is a programmer error (asserted): load_secret never gives one.
std::variant<Claims, Error> verify(std::string_view token, std::string_view secret,
                                   std::int64_t now_s);

// For tools and tests: the HS256 token, header {"alg":"HS256","typ":"JWT"},
// for these claims. The payload holds sub, name (only when has_name), role,
// rooms (then "*" when all_rooms), exp, and nbf (only when nbf_s != 0).
// Values are written as they are, unchecked, so tests can sign bad claims;
// every string must be valid UTF-8 (asserted: the JSON would be invalid).
std::string sign(const Claims& c, std::string_view secret);

// Reads the secret of --jwt-secret-file: the file's bytes with trailing
// whitespace (space, \t, \n, \v, \f, \r) removed; leading and inner bytes are
// kept as they are. Errors: the file cannot be opened or read (the message
// names the path and the system's reason), it is larger than
// secret_file_bytes_max, or nothing is left after trimming.
Result<std::string> load_secret(const std::string& path);

// The text of a Failure ("malformed", "bad_algorithm", ...), for logs and metrics.
std::string_view failure_name(Failure why);

}  // namespace rc::jwt
