#pragma once
// Which resource a parsed request asks for, and the checks of PROTOCOL.md
// section 1 that come before credentials, in the protocol's order:
//   1. path and room   -> 404 NOT_FOUND / 400 BAD_ROOM_ID
//   2. method          -> 405 METHOD_NOT_ALLOWED (with Allow)
//   3. upgrade (rooms) -> 426 UPGRADE_REQUIRED, 400 BAD_REQUEST for a bad key
//   4. Origin          -> 403 ORIGIN_NOT_ALLOWED
// Credentials (401/403) and query options (400, parse_upgrade_query below)
// are the caller's next steps.
//
// Everything here is pure and may be called from any thread. route() does not
// allocate on success; its error answers carry a std::string message.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"
#include "protocol/http.h"

namespace rc::http {

enum class Route : std::uint8_t { Healthz, Metrics, Tickets, Room, Static, Error };

struct RouteOptions {
  // Origins allowed to open sessions and get tickets, compared byte for byte
  // with the Origin header ("https://school.example"). Empty = any origin.
  std::span<const std::string> allowed_origins;
};

struct Routed {
  Route route = Route::Error;
  // Route::Room: the validated room id, from the path only (points into the
  // request's bytes).
  std::string_view room;
  // Route::Static: the asset's name without the leading '/': "/" gives
  // "index.html" (static storage), "/app.js" gives the matching element of
  // static_assets.
  std::string_view asset;
  // Route::Error: the answer to send (see error_response(const Routed&)).
  int status = 0;
  std::string_view code;  // PROTOCOL error code, static storage
  std::string message;
  std::string allow;  // 405 only: the Allow header's value, e.g. "GET" or "GET, HEAD"
  // Header lines to add to the answer, each ending in "\r\n" (static storage):
  // "Upgrade: websocket" on a 426 for a missing upgrade, and
  // "Sec-WebSocket-Version: 13" on a 426 for an unsupported version.
  std::string_view extra_headers;
};

// Routes a request (parse_request returned Complete for it).
// Known resources:
//   GET|HEAD /healthz            -> Healthz
//   GET|HEAD /metrics            -> Metrics
//   POST /api/tickets            -> Tickets
//   GET /ws/rooms/{room}         -> Room (WebSocket upgrade)
//   GET|HEAD / and /<name>       -> Static, for <name> exactly equal to an
//                                   element of static_assets ("app.js")
// HEAD is accepted wherever GET is, except on rooms: the caller sends the GET
// answer's head without its body. Allow lists "GET, HEAD" there, "POST" on
// tickets and "GET" on rooms.
// Paths are matched exactly (case-sensitive, no percent-decoding, no trailing
// '/'); anything else is 404 NOT_FOUND. Everything after "/ws/rooms/" up to the
// query is the room id: not valid_room_id ('%', '/', '.', empty, over 64 bytes,
// ...) -> 400 BAD_ROOM_ID. The query never affects routing.
// Upgrade (rooms only, RFC 6455 4.2.1): HTTP/1.1 with an Upgrade header holding
// the token "websocket" and a Connection header holding "upgrade" (any
// Upgrade/Connection line; case-insensitive), else 426 UPGRADE_REQUIRED;
// Sec-WebSocket-Version other than exactly "13" (or missing) -> 426 with
// "Sec-WebSocket-Version: 13"; not exactly one Sec-WebSocket-Key, or one that
// is not base64 of 16 bytes (22 base64 characters then "==") -> 400
// BAD_REQUEST.
// Origin (rooms and tickets, the two resources that hand out a session or a
// credential): with a non-empty allow-list, a request whose first Origin header
// is not in the list -> 403 ORIGIN_NOT_ALLOWED. No Origin header = allowed (not
// a browser). Static assets, /healthz and /metrics are not origin-checked.
Routed route(const Request& req, const RouteOptions& opts,
             std::span<const std::string_view> static_assets);

// The whole HTTP error answer for a Routed with route == Route::Error
// (asserted): error_response() with Allow and extra_headers added.
std::string error_response(const Routed& routed);

// 1-64 bytes of [A-Za-z0-9_-] (PROTOCOL section 1).
bool valid_room_id(std::string_view s);
// 1-64 bytes of [A-Za-z0-9_.-] (PROTOCOL section 2).
bool valid_user_id(std::string_view s);
// 1-64 bytes of well-formed UTF-8 with no control character (C0, DEL, C1
// U+0080-U+009F). Does not trim: callers trim first (PROTOCOL section 3).
bool valid_name(std::string_view s);

// The options of a WebSocket upgrade's query (PROTOCOL sections 2 and 3.1),
// form-decoded. has_* tells whether the parameter was present.
struct UpgradeQuery {
  std::string ticket;  // opaque, not checked here (an unknown ticket is 401 later)
  bool has_ticket = false;
  std::string user_id;  // valid_user_id
  bool has_user_id = false;
  std::string name;  // trimmed, valid_name
  bool has_name = false;
  std::uint64_t since = 0;
  bool has_since = false;
};

// Parses the raw query (Request::query, without '?'). Keys and values are
// form-decoded (form_decode). Recognised keys: ticket, user_id, name, since.
// Every other key is ignored, including "room" (the room comes from the path
// only) and keys that fail to decode. A repeated recognised key: the first
// occurrence wins and later ones are not even checked.
// Errors (the caller answers 400 BAD_REQUEST with the message, which names
// the parameter): a malformed %-escape in a recognised parameter's value;
// user_id not valid_user_id; name not valid_name after trimming space, \t,
// \n, \v, \f, \r; since not a non-negative decimal integer fitting 64 bits
// (digits only: no sign, no spaces, not empty).
// Allocates (the decoded strings); called once per upgrade, not per frame.
Result<UpgradeQuery> parse_upgrade_query(std::string_view raw_query);

}  // namespace rc::http
