#include "protocol/route.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/assert.h"
#include "core/limits.h"

namespace rc::http {
namespace {

constexpr std::string_view kRoomPrefix = "/ws/rooms/";

Routed error(int status, std::string_view code, std::string message) {
  Routed r;
  r.status = status;
  r.code = code;
  r.message = std::move(message);
  return r;
}

Routed found(Route route) {
  Routed r;
  r.route = route;
  return r;
}

// Step 1: the path alone decides the resource. A room path with a bad id is
// reported here, before the method, so a POST to a bad room is 400, not 405.
Routed match_path(std::string_view path, std::span<const std::string_view> static_assets) {
  if (path == "/healthz") return found(Route::Healthz);
  if (path == "/metrics") return found(Route::Metrics);
  if (path == "/api/tickets") return found(Route::Tickets);
  if (path.starts_with(kRoomPrefix)) {
    const std::string_view room = path.substr(kRoomPrefix.size());
    if (!valid_room_id(room)) {
      return error(400, "BAD_ROOM_ID", "room id must be 1-64 bytes of [A-Za-z0-9_-]");
    }
    Routed r = found(Route::Room);
    r.room = room;
    return r;
  }
  if (path == "/") {
    Routed r = found(Route::Static);
    r.asset = "index.html";
    return r;
  }
  const std::string_view name = path.substr(1);
  const auto it = std::find(static_assets.begin(), static_assets.end(), name);
  if (!name.empty() && it != static_assets.end()) {
    Routed r = found(Route::Static);
    r.asset = *it;
    return r;
  }
  return error(404, "NOT_FOUND", "no such resource");
}

std::string_view allowed_methods(Route route) {
  switch (route) {
    case Route::Tickets:
      return "POST";
    case Route::Room:
      return "GET";
    default:
      return "GET, HEAD";
  }
}

bool method_allowed(Route route, Method method) {
  switch (route) {
    case Route::Tickets:
      return method == Method::Post;
    case Route::Room:
      return method == Method::Get;
    default:
      return method == Method::Get || method == Method::Head;
  }
}

// Connection and Upgrade are lists that a client may split over several
// lines, so every line with that name counts.
bool any_header_has_token(const Request& req, std::string_view name, std::string_view token) {
  for (std::size_t i = 0; i < req.header_count; ++i) {
    const Header& h = req.headers[i];
    if (detail::ascii_iequals(h.name, name) && header_has_token(h.value, token)) return true;
  }
  return false;
}

std::size_t count_headers(const Request& req, std::string_view name) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < req.header_count; ++i) {
    if (detail::ascii_iequals(req.headers[i].name, name)) ++n;
  }
  return n;
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// 16 bytes encode to 22 base64 characters and two '=' of padding. The spare
// low bits of the last character are not checked: a decoder still gets 16
// bytes, and the key is only ever hashed, never decoded.
bool valid_websocket_key(std::string_view key) {
  constexpr std::size_t key_chars = 24;
  constexpr std::size_t data_chars = 22;
  if (key.size() != key_chars || key.substr(data_chars) != "==") return false;
  return std::all_of(key.begin(), key.begin() + data_chars, is_base64_char);
}

// Step 3, rooms only (RFC 6455 section 4.2.1 and 4.4).
Routed check_upgrade(const Request& req) {
  const bool upgrade = req.version_minor == 1 &&
                       any_header_has_token(req, "Upgrade", "websocket") &&
                       any_header_has_token(req, "Connection", "upgrade");
  if (!upgrade) {
    Routed r = error(426, "UPGRADE_REQUIRED", "this path takes a WebSocket upgrade");
    r.extra_headers = "Upgrade: websocket\r\n";
    return r;
  }
  if (req.header("Sec-WebSocket-Version") != "13") {
    Routed r = error(426, "UPGRADE_REQUIRED", "unsupported Sec-WebSocket-Version (13 only)");
    r.extra_headers = "Sec-WebSocket-Version: 13\r\n";
    return r;
  }
  if (count_headers(req, "Sec-WebSocket-Key") != 1 ||
      !valid_websocket_key(req.header("Sec-WebSocket-Key"))) {
    return error(400, "BAD_REQUEST", "missing or invalid Sec-WebSocket-Key");
  }
  return found(Route::Room);
}

bool origin_allowed(const Request& req, const RouteOptions& opts) {
  if (opts.allowed_origins.empty() || !req.has_header("Origin")) return true;
  const std::string_view origin = req.header("Origin");
  return std::find(opts.allowed_origins.begin(), opts.allowed_origins.end(), origin) !=
         opts.allowed_origins.end();
}

// 1 to max_bytes bytes, each an ASCII letter or digit or one of `punctuation`.
bool all_of_charset(std::string_view s, std::size_t max_bytes, std::string_view punctuation) {
  if (s.empty() || s.size() > max_bytes) return false;
  for (const char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && punctuation.find(c) == std::string_view::npos) return false;
  }
  return true;
}

// PROTOCOL section 3: trimming removes space, \t, \n, \v, \f and \r.
std::string_view trim_protocol_space(std::string_view s) {
  constexpr std::string_view space = " \t\n\v\f\r";
  const std::size_t first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

Status decode_param(std::string_view key, std::string_view raw_value, std::string& out) {
  out.clear();
  if (form_decode(raw_value, out)) return Status::ok();
  return Status::error("query parameter " + std::string(key) + ": malformed %-escape");
}

// One recognised parameter's first occurrence. Later occurrences never get
// here, so a repeated parameter can neither override nor fail the first.
Status apply_param(std::string_view key, std::string_view raw_value, UpgradeQuery& q) {
  if (key == "ticket" && !q.has_ticket) {
    q.has_ticket = true;
    return decode_param(key, raw_value, q.ticket);
  }
  std::string value;
  if (key == "user_id" && !q.has_user_id) {
    if (Status s = decode_param(key, raw_value, value); !s) return s;
    if (!valid_user_id(value)) {
      return Status::error("query parameter user_id must be 1-64 bytes of [A-Za-z0-9_.-]");
    }
    q.user_id = std::move(value);
    q.has_user_id = true;
  } else if (key == "name" && !q.has_name) {
    if (Status s = decode_param(key, raw_value, value); !s) return s;
    const std::string_view trimmed = trim_protocol_space(value);
    if (!valid_name(trimmed)) {
      return Status::error(
          "query parameter name must be 1-64 bytes of UTF-8 without control characters");
    }
    q.name.assign(trimmed);
    q.has_name = true;
  } else if (key == "since" && !q.has_since) {
    if (Status s = decode_param(key, raw_value, value); !s) return s;
    if (!detail::parse_decimal_u64(value, q.since)) {
      return Status::error("query parameter since must be a non-negative integer");
    }
    q.has_since = true;
  }
  return Status::ok();
}

}  // namespace

Routed route(const Request& req, const RouteOptions& opts,
             std::span<const std::string_view> static_assets) {
  Routed r = match_path(req.path, static_assets);
  if (r.route == Route::Error) return r;
  if (!method_allowed(r.route, req.method)) {
    Routed e = error(405, "METHOD_NOT_ALLOWED",
                     "method " + std::string(req.method_text) +
                         " not allowed here; allowed: " + std::string(allowed_methods(r.route)));
    e.allow = allowed_methods(r.route);
    return e;
  }
  if (r.route == Route::Room) {
    if (Routed u = check_upgrade(req); u.route == Route::Error) return u;
  }
  if ((r.route == Route::Room || r.route == Route::Tickets) && !origin_allowed(req, opts)) {
    return error(403, "ORIGIN_NOT_ALLOWED", "origin not allowed");
  }
  return r;
}

std::string error_response(const Routed& routed) {
  RC_ASSERT(routed.route == Route::Error);
  std::string extra;
  if (!routed.allow.empty()) extra = "Allow: " + routed.allow + "\r\n";
  extra += routed.extra_headers;
  return error_response(routed.status, routed.code, routed.message, extra);
}

bool valid_room_id(std::string_view s) {
  return all_of_charset(s, limits::room_id_bytes_max, "_-");
}

bool valid_user_id(std::string_view s) {
  return all_of_charset(s, limits::user_id_bytes_max, "_.-");
}

// C1 controls (U+0080-U+009F) are the two-byte sequences C2 80 to C2 9F.
bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > limits::name_bytes_max) return false;
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t n = detail::utf8_sequence_bytes(s.substr(i));
    if (n == 0) return false;
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (n == 1 && (b0 < 0x20 || b0 == 0x7f)) return false;
    if (n == 2 && b0 == 0xC2 && static_cast<unsigned char>(s[i + 1]) <= 0x9F) return false;
    i += n;
  }
  return true;
}

Result<UpgradeQuery> parse_upgrade_query(std::string_view raw_query) {
  UpgradeQuery q;
  Status status;
  std::string key;
  for_each_query_param(raw_query, [&](std::string_view raw_key, std::string_view raw_value) {
    if (!status) return;
    key.clear();
    if (!form_decode(raw_key, key)) return;  // cannot be a recognised key
    status = apply_param(key, raw_value, q);
  });
  if (!status) return status;
  return q;
}

}  // namespace rc::http
