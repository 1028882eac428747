// rollcall-token: prints an HS256 JWT that rollcall accepts (PROTOCOL.md
// section 2), for operators, load tests and scripts. The claims are checked
// here with the server's own rules, so a token this tool prints is one the
// server takes: bad input is refused with a message and exit status 2.

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>
#include <variant>

#include "core/assert.h"
#include "core/status.h"
#include "protocol/jwt.h"
#include "protocol/route.h"
#include "protocol/utf8.h"

namespace {

constexpr int kExitBadInput = 2;
constexpr std::int64_t kTtlMaxS = 10LL * 366 * 24 * 3600;  // ten years

struct Options {
  std::string secret_file, sub, name, role = "student", rooms;
  std::int64_t ttl_s = 3600;
  std::int64_t nbf_in_s = 0;
  std::int64_t now_s = 0;
  bool has_name = false, has_nbf = false, has_now = false;
};

constexpr const char* kFooter = R"txt(
The token's claims: sub, name (only with --name), role, rooms ("*" = every
room), exp = now + ttl, nbf = now + nbf-in (only with --nbf-in). It is signed
with HMAC-SHA256 using the bytes of --secret-file without trailing whitespace,
as the server reads --jwt-secret-file.

Examples:
  rollcall-token --secret-file jwt.secret --sub u42 --name "Ada" --rooms physics-101
  rollcall-token --secret-file jwt.secret --sub prof.ng --role teacher --rooms '*' --ttl 600
  curl -H "Authorization: Bearer $(rollcall-token --secret-file jwt.secret --sub u1 --rooms a)" ...

Exit status: 0 with the token on standard output; 2 for bad input (the reason
on standard error).)txt";

void add_options(CLI::App& app, Options& o) {
  app.add_option("--secret-file", o.secret_file, "File holding the server's JWT secret")
      ->required();
  app.add_option("--sub", o.sub, "User id: 1-64 bytes of [A-Za-z0-9_.-]")->required();
  app.add_option("--name", o.name,
                 "Display name: 1-64 bytes of UTF-8 without control characters once trimmed "
                 "(default: none; the server then shows the user id and lets the user rename)");
  app.add_option("--role", o.role, "teacher or student")
      ->check(CLI::IsMember({"teacher", "student"}))
      ->capture_default_str();
  app.add_option("--rooms", o.rooms,
                 "Comma-separated room ids (1-64 bytes of [A-Za-z0-9_-] each), or '*' for "
                 "every room")
      ->required();
  app.add_option("--ttl", o.ttl_s, "Seconds from now until the token expires (exp)")
      ->check(CLI::Range(std::int64_t{1}, kTtlMaxS))
      ->capture_default_str();
  app.add_option("--nbf-in", o.nbf_in_s,
                 "Seconds from now until the token becomes valid (nbf); less than --ttl")
      ->check(CLI::Range(std::int64_t{0}, kTtlMaxS));
  app.add_option("--now", o.now_s,
                 "Seconds since the epoch to use as the current time (default: the clock), "
                 "for reproducible tokens")
      ->check(CLI::Range(std::int64_t{1}, rc::jwt::numeric_date_max - 2 * kTtlMaxS));
}

// Fills rooms/all_rooms from "a,b" or "*", with the server's rules.
rc::Status parse_rooms(std::string_view list, rc::jwt::Claims& c) {
  std::size_t entries = 0;
  for (std::size_t start = 0;; ++entries) {
    const std::size_t comma = list.find(',', start);
    const std::string_view room = list.substr(start, comma - start);
    if (room == "*") {
      c.all_rooms = true;
    } else if (rc::http::valid_room_id(room)) {
      c.rooms.emplace_back(room);
    } else {
      return rc::Status::error("--rooms: each entry must be '*' or 1-64 bytes of [A-Za-z0-9_-]");
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (entries + 1 > rc::jwt::rooms_max) {
    return rc::Status::error("--rooms: more than 1000 entries");
  }
  return rc::Status::ok();
}

rc::Result<rc::jwt::Claims> claims_of(const Options& o) {
  rc::jwt::Claims c;
  if (!rc::http::valid_user_id(o.sub)) {
    return rc::Status::error("--sub must be 1-64 bytes of [A-Za-z0-9_.-]");
  }
  c.sub = o.sub;
  c.name = o.sub;
  if (o.has_name) {
    const std::string_view trimmed = rc::utf8::trim(o.name);
    if (!rc::http::valid_name(trimmed)) {
      return rc::Status::error("--name must be 1-64 bytes of UTF-8 without control characters");
    }
    c.name.assign(trimmed);
    c.has_name = true;
  }
  c.role = o.role == "teacher" ? rc::jwt::Role::kTeacher : rc::jwt::Role::kStudent;
  if (rc::Status s = parse_rooms(o.rooms, c); !s) return s;
  if (o.has_nbf && o.nbf_in_s >= o.ttl_s) {
    return rc::Status::error("--nbf-in must be less than --ttl: the token would never be valid");
  }
  const std::int64_t now_s = o.has_now ? o.now_s : static_cast<std::int64_t>(std::time(nullptr));
  c.exp_s = now_s + o.ttl_s;
  if (o.has_nbf) c.nbf_s = now_s + o.nbf_in_s;
  return c;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "rollcall-token: %s\n", message.c_str());
  return kExitBadInput;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Prints an HS256 JWT (a Bearer token) that a rollcall server configured with the "
      "same --jwt-secret-file accepts.",
      "rollcall-token"};
  app.footer(kFooter);
  Options o;
  add_options(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitBadInput;  // --help is not an error
  }
  o.has_name = app.count("--name") > 0;
  o.has_nbf = app.count("--nbf-in") > 0;
  o.has_now = app.count("--now") > 0;

  rc::Result<std::string> secret = rc::jwt::load_secret(o.secret_file);
  if (!secret) return fail("--secret-file: " + secret.status().message());
  rc::Result<rc::jwt::Claims> claims = claims_of(o);
  if (!claims) return fail(claims.status().message());

  const std::string token = rc::jwt::sign(*claims, *secret);
  if (token.size() > rc::jwt::token_bytes_max) {
    return fail("the token would be longer than 8192 bytes, which the server refuses");
  }
  // What was checked above is what verify() checks, so the server's own
  // verification at the first valid second must pass.
  const std::int64_t valid_at = claims->nbf_s != 0 ? claims->nbf_s : claims->exp_s - o.ttl_s;
  RC_ASSERT(std::holds_alternative<rc::jwt::Claims>(rc::jwt::verify(token, *secret, valid_at)));
  std::printf("%s\n", token.c_str());
  return 0;
}
