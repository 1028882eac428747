#include "protocol/jwt.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/crypto.h"

namespace rc::jwt {
namespace {

using crypto::base64url_encode;

constexpr std::string_view kSecret = "correct horse battery staple 0123";
constexpr std::int64_t kNow = 1763798400;  // 2025-11-22T08:00:00Z
constexpr std::string_view kHeader = R"({"alg":"HS256","typ":"JWT"})";

// A token assembled here from its JSON texts, independently of sign(): the
// MAC is HMAC-SHA256 over base64url(header) "." base64url(payload).
std::string token_of(std::string_view header_json, std::string_view payload_json,
                     std::string_view secret = kSecret) {
  std::string input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  const auto mac = crypto::hmac_sha256(secret, input);
  return input + "." +
         base64url_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

std::string signed_payload(std::string_view payload_json) {
  return token_of(kHeader, payload_json);
}

// `{"sub":"u1","exp":<now+60>,"rooms":["physics-101"]` + extra + `}`.
std::string payload_with(std::string_view extra) {
  return R"({"sub":"u1","exp":)" + std::to_string(kNow + 60) + R"(,"rooms":["physics-101"])" +
         std::string(extra) + "}";
}

std::vector<std::string_view> parts_of(std::string_view token) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (std::size_t dot; (dot = token.find('.', start)) != std::string_view::npos; start = dot + 1) {
    parts.push_back(token.substr(start, dot - start));
  }
  parts.push_back(token.substr(start));
  return parts;
}

Claims expect_ok(std::string_view token, std::int64_t now = kNow,
                 std::string_view secret = kSecret) {
  auto r = verify(token, secret, now);
  if (const Error* e = std::get_if<Error>(&r)) {
    ADD_FAILURE() << "rejected (" << failure_name(e->why) << "): " << e->message;
    return {};
  }
  return std::get<Claims>(std::move(r));
}

// Checks the failure kind, and that the message says something without
// repeating the token or any sizeable piece of it.
void expect_fail(std::string_view token, Failure why, std::int64_t now = kNow,
                 std::string_view secret = kSecret) {
  auto r = verify(token, secret, now);
  const Error* e = std::get_if<Error>(&r);
  ASSERT_NE(e, nullptr) << "accepted: " << token;
  EXPECT_EQ(failure_name(e->why), failure_name(why)) << e->message;
  EXPECT_FALSE(e->message.empty());
  for (std::string_view part : parts_of(token)) {
    if (part.size() >= 8) {
      EXPECT_EQ(e->message.find(part), std::string::npos) << e->message;
    }
  }
}

void expect_claims_fail(std::string_view payload_json) {
  SCOPED_TRACE(payload_json);
  expect_fail(signed_payload(payload_json), Failure::kBadClaims);
}

// ---- the plumbing, checked against published bytes

// RFC 7515 appendix A.1: an HS256 JWS with a JWK key, a header with a CRLF
// inside, and a payload of other claims. Its signature must verify here; the
// claims then fail (no sub, no rooms), which is ours to decide.
TEST(JwtTest, Rfc7515AppendixA1SignatureVerifies) {
  const auto key = crypto::base64url_decode(
      "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
  ASSERT_TRUE(key.has_value());
  const std::string header = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
  const std::string payload =
      "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
  const std::string expected =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
      "fQ."
      "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  EXPECT_EQ(token_of(header, payload, *key), expected);

  auto r = verify(expected, *key, 1300819380);
  ASSERT_TRUE(std::holds_alternative<Error>(r));
  EXPECT_EQ(std::get<Error>(r).why, Failure::kBadClaims);  // signature and header accepted
  EXPECT_EQ(std::get<Error>(r).message, "sub is missing");

  std::string tampered = expected;
  tampered[tampered.size() - 20] ^= 1;  // one bit of the MAC ('U' -> 'T')
  expect_fail(tampered, Failure::kBadSignature, 1300819380, *key);
}

TEST(JwtTest, SignWritesTheExpectedBytes) {
  Claims c;
  c.sub = "u42";
  c.name = "Ada";
  c.has_name = true;
  c.role = Role::kTeacher;
  c.rooms = {"physics-101", "lab_2"};
  c.all_rooms = true;
  c.exp_s = kNow + 3600;
  c.nbf_s = kNow;
  const std::string payload =
      R"({"sub":"u42","name":"Ada","role":"teacher","rooms":["physics-101","lab_2","*"],)"
      R"("exp":1763802000,"nbf":1763798400})";
  const std::string token = sign(c, kSecret);
  EXPECT_EQ(token, token_of(kHeader, payload));
  EXPECT_EQ(token.substr(0, token.find('.')), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");

  const Claims back = expect_ok(token);
  EXPECT_EQ(back.sub, "u42");
  EXPECT_EQ(back.name, "Ada");
  EXPECT_TRUE(back.has_name);
  EXPECT_EQ(back.role, Role::kTeacher);
  EXPECT_EQ(back.rooms, (std::vector<std::string>{"physics-101", "lab_2"}));
  EXPECT_TRUE(back.all_rooms);
  EXPECT_EQ(back.exp_s, kNow + 3600);
  EXPECT_EQ(back.nbf_s, kNow);
}

TEST(JwtTest, SignLeavesOutAbsentOptionalClaims) {
  Claims c;
  c.sub = "u1";
  c.name = "u1";
  c.exp_s = 100;
  const std::string token = sign(c, kSecret);
  EXPECT_EQ(token, token_of(kHeader, R"({"sub":"u1","role":"student","rooms":[],"exp":100})"));
}

// ---- valid tokens

TEST(JwtTest, MinimalTokenGetsDefaults) {
  const Claims c = expect_ok(signed_payload(payload_with("")));
  EXPECT_EQ(c.sub, "u1");
  EXPECT_EQ(c.name, "u1");
  EXPECT_FALSE(c.has_name);
  EXPECT_EQ(c.role, Role::kStudent);
  EXPECT_EQ(c.rooms, std::vector<std::string>{"physics-101"});
  EXPECT_FALSE(c.all_rooms);
  EXPECT_EQ(c.exp_s, kNow + 60);
  EXPECT_EQ(c.nbf_s, 0);
  EXPECT_TRUE(c.allows("physics-101"));
  EXPECT_FALSE(c.allows("physics-102"));
  EXPECT_FALSE(c.allows(""));
}

TEST(JwtTest, UnknownClaimsAndHeaderMembersAreIgnored) {
  const Claims c = expect_ok(token_of(
      R"({"kid":"k1","alg":"HS256","x5u":null,"extra":{"a":[1,2.5,true,null]}})",
      payload_with(
          R"(,"iss":"lms.example","aud":["x"],"iat":1763798000,"jti":"j","deep":[[[{}]]])")));
  EXPECT_EQ(c.sub, "u1");
}

TEST(JwtTest, KeysAreComparedUnescaped) {
  const Claims c = expect_ok(
      token_of(R"({"\u0061lg":"HS256"})",
               R"({"\u0073ub":"u\u0031","exp":1763798460,"rooms":["r"],"name":"Zo\u00eb"})"));
  EXPECT_EQ(c.sub, "u1");
  EXPECT_EQ(c.name, "Zo\xc3\xab");
}

TEST(JwtTest, TypMayBeJwtInAnyCaseOrAbsent) {
  for (std::string_view typ : {"JWT", "jwt", "Jwt", "application/jwt", "APPLICATION/JWT"}) {
    SCOPED_TRACE(typ);
    expect_ok(token_of(R"({"alg":"HS256","typ":")" + std::string(typ) + "\"}", payload_with("")));
  }
  expect_ok(token_of(R"({"alg":"HS256"})", payload_with("")));
}

// ---- time

TEST(JwtTest, ExpiryAllowsThirtySecondsOfSkew) {
  const std::string token = signed_payload(payload_with(""));  // exp = now + 60
  expect_ok(token, kNow + 60);
  expect_ok(token, kNow + 90);  // expired, but within the skew
  expect_fail(token, Failure::kExpired, kNow + 91);
  expect_fail(token, Failure::kExpired, std::numeric_limits<std::int64_t>::max());
  expect_ok(token, std::numeric_limits<std::int64_t>::min());
}

TEST(JwtTest, NotBeforeAllowsThirtySecondsOfSkew) {
  const std::string token = signed_payload(payload_with(",\"nbf\":" + std::to_string(kNow + 40)));
  expect_fail(token, Failure::kNotYetValid, kNow);      // 40 s early
  expect_fail(token, Failure::kNotYetValid, kNow + 9);  // 31 s early
  expect_ok(token, kNow + 10);                          // 30 s early: within the skew
  EXPECT_EQ(expect_ok(token, kNow + 40).nbf_s, kNow + 40);
}

TEST(JwtTest, FractionalDatesRoundTowardsTheStricterSide) {
  // exp = now - 30.5: now is 0.5 s past exp + skew.
  expect_fail(signed_payload(R"({"sub":"u1","rooms":[],"exp":1763798369.5})"), Failure::kExpired);
  const Claims c = expect_ok(signed_payload(R"({"sub":"u1","rooms":[],"exp":1763798370.5})"));
  EXPECT_EQ(c.exp_s, kNow - 30);
  // nbf = now + 30.5: 0.5 s too early even with the skew.
  expect_fail(signed_payload(R"({"sub":"u1","rooms":[],"exp":1.8e9,"nbf":1763798430.5})"),
              Failure::kNotYetValid);
  EXPECT_EQ(
      expect_ok(signed_payload(R"({"sub":"u1","rooms":[],"exp":1.8e9,"nbf":1763798429.5})")).nbf_s,
      kNow + 30);
}

TEST(JwtTest, DatesMustBeNumbersInRange) {
  expect_claims_fail(R"({"sub":"u1","rooms":[],"exp":"1763798460"})");
  expect_claims_fail(R"({"sub":"u1","rooms":[],"exp":null})");
  expect_claims_fail(R"({"sub":"u1","rooms":[],"exp":true})");
  expect_claims_fail(R"({"sub":"u1","rooms":[],"exp":[1763798460]})");
  expect_claims_fail(R"({"sub":"u1","rooms":[],"exp":-1})");
  expect_claims_fail(R"({"sub":"u1","rooms":[],"exp":-0.5})");
  expect_claims_fail(R"({"sub":"u1","rooms":[],"exp":1e300})");
  expect_claims_fail(R"({"sub":"u1","rooms":[],"exp":9007199254740993})");      // 2^53 + 1
  expect_claims_fail(R"({"sub":"u1","rooms":[],"exp":18446744073709551615})");  // 2^64 - 1
  expect_claims_fail(R"({"sub":"u1","rooms":[],"exp":1.8e9,"nbf":"now"})");
  expect_claims_fail(R"({"sub":"u1","rooms":[],"exp":1.8e9,"nbf":-5})");
  const Claims c = expect_ok(signed_payload(R"({"sub":"u1","rooms":[],"exp":9007199254740992})"));
  EXPECT_EQ(c.exp_s, std::int64_t{1} << 53);
}

// ---- signature and algorithm

TEST(JwtTest, WrongSecretIsABadSignature) {
  const std::string token = signed_payload(payload_with(""));
  expect_fail(token, Failure::kBadSignature, kNow, "another secret");
  expect_fail(token, Failure::kBadSignature, kNow, std::string(kSecret) + " ");
}

TEST(JwtTest, ChangedPayloadOrSignatureIsABadSignature) {
  const std::string token = signed_payload(payload_with(""));
  const auto parts = parts_of(token);
  const std::string other = base64url_encode(R"({"sub":"admin","exp":1763798460,"rooms":["*"]})");
  expect_fail(std::string(parts[0]) + "." + other + "." + std::string(parts[2]),
              Failure::kBadSignature);
  expect_fail(std::string(parts[0]) + "." + std::string(parts[1]) + ".", Failure::kBadSignature);
  // 31 of the 32 MAC bytes: a prefix must not pass.
  const std::string mac = *crypto::base64url_decode(parts[2]);
  expect_fail(std::string(parts[0]) + "." + std::string(parts[1]) + "." +
                  base64url_encode(std::string_view(mac).substr(0, 31)),
              Failure::kBadSignature);
}

TEST(JwtTest, AlgNoneIsRefusedWithOrWithoutSignature) {
  const std::string none = R"({"alg":"none","typ":"JWT"})";
  const std::string unsigned_token =
      base64url_encode(none) + "." + base64url_encode(payload_with("")) + ".";
  expect_fail(unsigned_token, Failure::kBadAlgorithm);
  expect_fail(token_of(none, payload_with("")), Failure::kBadAlgorithm);  // validly MACed
}

TEST(JwtTest, OtherAlgorithmsAreRefused) {
  for (std::string_view header :
       {R"({"alg":"RS256"})", R"({"alg":"HS512"})", R"({"alg":"HS384"})", R"({"alg":"hs256"})",
        R"({"alg":"HS256 "})", R"({"alg":""})", R"({"alg":null})", R"({"alg":256})",
        R"({"alg":["HS256"]})", R"({"typ":"JWT"})", R"({})"}) {
    SCOPED_TRACE(header);
    expect_fail(token_of(header, payload_with("")), Failure::kBadAlgorithm);
  }
}

TEST(JwtTest, HeaderMustBeAJsonObjectWithAJwtTyp) {
  for (std::string_view header :
       {"not json", R"(["HS256"])", R"("HS256")", "", R"({"alg":"HS256"} {})",
        R"({"alg":"HS256",})", R"({"alg":"HS256","alg":"HS256"})",
        R"({"alg":"HS256","typ":"at+jwt"})", R"({"alg":"HS256","typ":1})",
        R"({"alg":"HS256","typ":null})", R"({"alg":"HS256","crit":["exp"],"exp":1})",
        "{\"alg\":\"HS256\",\"x\":\"\xff\"}"}) {
    SCOPED_TRACE(header);
    expect_fail(token_of(header, payload_with("")), Failure::kMalformed);
  }
}

// ---- structure

TEST(JwtTest, PartsMustBeStrictBase64Url) {
  const std::string token = signed_payload(payload_with(""));
  const auto p = parts_of(token);
  const std::string h(p[0]), pl(p[1]), s(p[2]);
  ASSERT_NE(pl.size() % 4, 0u);  // so that '=' padding would be canonical in base64
  expect_fail(h + "." + pl + std::string(4 - pl.size() % 4, '=') + "." + s, Failure::kMalformed);
  expect_fail(h + "=." + pl + "." + s, Failure::kMalformed);
  expect_fail(h + "." + pl + "." + s + "=", Failure::kMalformed);
  expect_fail("+" + h.substr(1) + "." + pl + "." + s, Failure::kMalformed);
  expect_fail(h + "." + pl + "." + "/" + s.substr(1), Failure::kMalformed);
  expect_fail(h + "." + pl + " ." + s, Failure::kMalformed);
  expect_fail(" " + token, Failure::kMalformed);
  expect_fail(token + "\n", Failure::kMalformed);
  expect_fail(h + ".a." + s, Failure::kMalformed);  // one character cannot be base64
  // The last character of a 32-byte signature carries 4 bits: its other 2 must be zero.
  std::string stray = token;
  stray.back() = static_cast<char>(stray.back() + 1);
  expect_fail(stray, Failure::kMalformed);
}

TEST(JwtTest, ExactlyThreeParts) {
  const std::string token = signed_payload(payload_with(""));
  const auto p = parts_of(token);
  expect_fail(std::string(p[0]) + "." + std::string(p[1]), Failure::kMalformed);
  expect_fail(token + ".", Failure::kMalformed);
  expect_fail(token + "." + std::string(p[2]), Failure::kMalformed);
  expect_fail("", Failure::kMalformed);
  expect_fail("..", Failure::kMalformed);  // three empty parts: an empty header is not JSON
  expect_fail("...", Failure::kMalformed);
  expect_fail(std::string(p[0]), Failure::kMalformed);
}

TEST(JwtTest, TokenSizeLimit) {
  // Pad an ignored claim until the token is exactly token_bytes_max long.
  std::string token;
  for (std::size_t pad = 6000; pad < 6200; ++pad) {
    token = signed_payload(payload_with(",\"pad\":\"" + std::string(pad, 'x') + "\""));
    if (token.size() >= token_bytes_max) break;
  }
  ASSERT_EQ(token.size(), token_bytes_max);
  expect_ok(token);
  const std::string longer =
      signed_payload(payload_with(",\"pad\":\"" + std::string(6200, 'x') + "\""));
  ASSERT_GT(longer.size(), token_bytes_max);
  expect_fail(longer, Failure::kMalformed);
  expect_fail(std::string(1 << 20, 'a'), Failure::kMalformed);
}

TEST(JwtTest, PayloadMustBeAJsonObject) {
  for (std::string_view payload :
       {"", "null", "[]", R"("sub")", "{", R"({"sub":"u1",})", R"({"sub":"u1"} x)",
        R"({"sub":"u1","exp":1763798460,"rooms":["r"],"x":[1 2]})",
        R"({"sub":"u1","exp":1763798460,"rooms":["r"],"x":tru})",
        R"({"sub":"u1","exp":1763798460,"rooms":["r"],"x":01})",
        R"({"sub":"u1","exp":1763798460,"rooms":["r"],"x":1e999})",
        R"({"sub":"u1","exp":1763798460,"rooms":["r"],"x":"\q"})",
        "{\"sub\":\"u1\",\"exp\":1763798460,\"rooms\":[\"r\"],\"x\":\"\xc3\"}"}) {
    SCOPED_TRACE(payload);
    expect_fail(signed_payload(payload), Failure::kMalformed);
  }
}

TEST(JwtTest, DuplicateClaimsAreRefused) {
  expect_fail(signed_payload(payload_with(R"(,"sub":"u2")")), Failure::kMalformed);
  expect_fail(signed_payload(payload_with(R"(,"rooms":["*"])")), Failure::kMalformed);
  expect_fail(signed_payload(payload_with(R"(,"exp":1)")), Failure::kMalformed);
  expect_fail(signed_payload(payload_with(R"(,"role":"student","role":"teacher")")),
              Failure::kMalformed);
  expect_ok(signed_payload(payload_with(R"(,"iat":1,"iat":2)")));  // not ours to judge
}

// ---- claims

TEST(JwtTest, RequiredClaimsMustBePresent) {
  expect_claims_fail(R"({"exp":1763798460,"rooms":["r"]})");
  expect_claims_fail(R"({"sub":"u1","rooms":["r"]})");
  expect_claims_fail(R"({"sub":"u1","exp":1763798460})");
  expect_claims_fail("{}");
}

TEST(JwtTest, SubMustBeAValidUserId) {
  for (std::string_view sub : {R"("")", R"("a b")", R"("a/b")", R"("a@b")", R"("é")",
                               R"("u\u0000")", "1", "null", R"(["u1"])"}) {
    expect_claims_fail(R"({"exp":1763798460,"rooms":["r"],"sub":)" + std::string(sub) + "}");
  }
  expect_claims_fail(R"({"exp":1763798460,"rooms":["r"],"sub":")" + std::string(65, 'a') + "\"}");
  const std::string longest(64, 'a');
  EXPECT_EQ(
      expect_ok(signed_payload(R"({"exp":1763798460,"rooms":["r"],"sub":")" + longest + "\"}")).sub,
      longest);
  EXPECT_EQ(expect_ok(signed_payload(R"({"exp":1763798460,"rooms":["r"],"sub":"A.z_0-9"})")).sub,
            "A.z_0-9");
}

TEST(JwtTest, RoomsMustBeAnArrayOfRoomIds) {
  for (std::string_view rooms :
       {R"("physics-101")", R"({"physics-101":true})", "null", "1", R"(["a.b"])", R"([""])",
        R"(["ok","a b"])", R"(["ok",1])", R"([["ok"]])", R"(["a%20b"])", R"(["**"])"}) {
    expect_claims_fail(R"({"sub":"u1","exp":1763798460,"rooms":)" + std::string(rooms) + "}");
  }
  expect_claims_fail(R"({"sub":"u1","exp":1763798460,"rooms":[")" + std::string(65, 'r') + "\"]}");
}

TEST(JwtTest, EmptyRoomsAllowNothing) {
  const Claims c = expect_ok(signed_payload(R"({"sub":"u1","exp":1763798460,"rooms":[]})"));
  EXPECT_TRUE(c.rooms.empty());
  EXPECT_FALSE(c.all_rooms);
  EXPECT_FALSE(c.allows("physics-101"));
}

TEST(JwtTest, StarAnywhereInRoomsAllowsEveryRoom) {
  const Claims c =
      expect_ok(signed_payload(R"({"sub":"u1","exp":1763798460,"rooms":["a","*","b","a"]})"));
  EXPECT_TRUE(c.all_rooms);
  EXPECT_EQ(c.rooms, (std::vector<std::string>{"a", "b", "a"}));
  EXPECT_TRUE(c.allows("a"));
  EXPECT_TRUE(c.allows("zzz"));
  const Claims only = expect_ok(signed_payload(R"({"sub":"u1","exp":1763798460,"rooms":["*"]})"));
  EXPECT_TRUE(only.all_rooms);
  EXPECT_TRUE(only.rooms.empty());
  EXPECT_TRUE(only.allows("physics-101"));
}

TEST(JwtTest, RoomsHoldAtMostAThousandEntries) {
  // Two-character ids, so that a thousand of them fit in token_bytes_max.
  constexpr std::string_view kAlphabet =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  auto id = [&](std::size_t i) {
    return std::string{kAlphabet[i / kAlphabet.size()], kAlphabet[i % kAlphabet.size()]};
  };
  auto payload = [&](std::size_t n) {
    std::string rooms;
    for (std::size_t i = 0; i < n; ++i) rooms += (i ? ",\"" : "\"") + id(i) + "\"";
    return R"({"sub":"u1","exp":1763798460,"rooms":[)" + rooms + "]}";
  };
  const std::string token = signed_payload(payload(rooms_max));
  ASSERT_LE(token.size(), token_bytes_max);
  const Claims c = expect_ok(token);
  EXPECT_EQ(c.rooms.size(), rooms_max);
  EXPECT_TRUE(c.allows(id(rooms_max - 1)));
  EXPECT_FALSE(c.allows(id(rooms_max)));
  const std::string over = signed_payload(payload(rooms_max + 1));
  ASSERT_LE(over.size(), token_bytes_max);
  expect_fail(over, Failure::kBadClaims);
}

TEST(JwtTest, NameIsTrimmedAndValidated) {
  auto name_of = [](std::string_view json_name) {
    return expect_ok(signed_payload(payload_with(",\"name\":" + std::string(json_name)))).name;
  };
  EXPECT_EQ(name_of(R"("Ada Lovelace")"), "Ada Lovelace");
  EXPECT_EQ(name_of(R"(" \t Ada\n ")"), "Ada");
  EXPECT_EQ(name_of(R"("👩‍🏫 Zoë")"), "👩‍🏫 Zoë");
  const std::string longest(64, 'n');
  EXPECT_EQ(name_of("\"   " + longest + "   \""), longest);  // 64 bytes once trimmed
  EXPECT_TRUE(expect_ok(signed_payload(payload_with(R"(,"name":"Ada")"))).has_name);

  for (std::string_view bad :
       {R"("")", R"("   ")", R"("a\u0007b")", R"("a\u0000")", R"("tab\tinside")", R"("\u007f")",
        R"("\u0085")", "null", "42", R"(["Ada"])", R"({"first":"Ada"})"}) {
    SCOPED_TRACE(bad);
    expect_claims_fail(payload_with(",\"name\":" + std::string(bad)));
  }
  expect_claims_fail(payload_with(",\"name\":\"" + std::string(65, 'n') + "\""));
  expect_claims_fail(payload_with(",\"name\":\"" + std::string(22, 'n') + "\xc3\xab" +
                                  std::string(42, 'n') + "\""));  // 66 bytes, 65 characters
}

TEST(JwtTest, RoleIsTeacherOrStudent) {
  EXPECT_EQ(expect_ok(signed_payload(payload_with(R"(,"role":"teacher")"))).role, Role::kTeacher);
  EXPECT_EQ(expect_ok(signed_payload(payload_with(R"(,"role":"student")"))).role, Role::kStudent);
  for (std::string_view bad :
       {R"("admin")", R"("Teacher")", R"("teacher ")", R"("")", "null", "1", R"(["teacher"])"}) {
    SCOPED_TRACE(bad);
    expect_claims_fail(payload_with(",\"role\":" + std::string(bad)));
  }
}

// ---- sign() and verify() agree

TEST(JwtTest, SignedClaimsVerifyToTheSameClaims) {
  Claims c;
  c.sub = "teacher.7";
  c.name = "Prof. Ng";
  c.has_name = true;
  c.role = Role::kTeacher;
  c.rooms = {"a", "b-2", "C_3"};
  c.exp_s = kNow + 10;
  const Claims back = expect_ok(sign(c, kSecret));
  EXPECT_EQ(back.sub, c.sub);
  EXPECT_EQ(back.name, c.name);
  EXPECT_EQ(back.has_name, c.has_name);
  EXPECT_EQ(back.role, c.role);
  EXPECT_EQ(back.rooms, c.rooms);
  EXPECT_EQ(back.all_rooms, c.all_rooms);
  EXPECT_EQ(back.exp_s, c.exp_s);
  EXPECT_EQ(back.nbf_s, 0);
  expect_fail(sign(c, "other"), Failure::kBadSignature);
}

TEST(JwtTest, FailureNames) {
  EXPECT_EQ(failure_name(Failure::kMalformed), "malformed");
  EXPECT_EQ(failure_name(Failure::kBadAlgorithm), "bad_algorithm");
  EXPECT_EQ(failure_name(Failure::kBadSignature), "bad_signature");
  EXPECT_EQ(failure_name(Failure::kExpired), "expired");
  EXPECT_EQ(failure_name(Failure::kNotYetValid), "not_yet_valid");
  EXPECT_EQ(failure_name(Failure::kBadClaims), "bad_claims");
}

// ---- load_secret

class LoadSecretTest : public ::testing::Test {
 protected:
  std::string write(std::string_view name, std::string_view bytes) {
    const std::string path = ::testing::TempDir() + "jwt_test_" + std::string(name);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr) << path;
    if (f == nullptr) return path;
    EXPECT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
    paths_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (const std::string& p : paths_) std::remove(p.c_str());
  }
  std::vector<std::string> paths_;
};

TEST_F(LoadSecretTest, TrailingWhitespaceIsRemoved) {
  auto a = load_secret(write("newline", "s3cret\n"));
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  EXPECT_EQ(a.value(), "s3cret");
  auto b = load_secret(write("inner", "  a b \t\n"));
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_EQ(b.value(), "  a b");
  auto c = load_secret(write("crlf", "key\r\n\v\f \r\n"));
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c.value(), "key");
  auto d = load_secret(write("plain", "no-newline"));
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(d.value(), "no-newline");
}

TEST_F(LoadSecretTest, BinaryBytesAreKept) {
  const std::string bytes("\x00\x01\xff k\x00", 6);
  auto r = load_secret(write("binary", bytes + "\n"));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r.value(), bytes);
}

TEST_F(LoadSecretTest, EmptyMissingOrHugeFilesAreErrors) {
  auto empty = load_secret(write("empty", ""));
  EXPECT_FALSE(empty.is_ok());
  auto blank = load_secret(write("blank", " \n\t\r\n"));
  ASSERT_FALSE(blank.is_ok());
  EXPECT_NE(blank.status().message().find("jwt_test_blank"), std::string::npos);

  const std::string missing = ::testing::TempDir() + "jwt_test_does_not_exist";
  auto none = load_secret(missing);
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.status().message().find(missing), std::string::npos);

  auto dir = load_secret(::testing::TempDir());
  EXPECT_FALSE(dir.is_ok());

  auto huge = load_secret(write("huge", std::string(secret_file_bytes_max + 1, 'k')));
  EXPECT_FALSE(huge.is_ok());
  auto largest = load_secret(write("largest", std::string(secret_file_bytes_max, 'k')));
  ASSERT_TRUE(largest.is_ok());
  EXPECT_EQ(largest.value().size(), secret_file_bytes_max);
}

TEST_F(LoadSecretTest, LoadedSecretVerifiesTokens) {
  auto secret = load_secret(write("roundtrip", std::string(kSecret) + "\n"));
  ASSERT_TRUE(secret.is_ok());
  expect_ok(signed_payload(payload_with("")), kNow, secret.value());
}

}  // namespace
}  // namespace rc::jwt
