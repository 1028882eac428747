#include "protocol/route.h"

#include <gtest/gtest.h>

#include <array>
#include <list>
#include <string>
#include <vector>

namespace rc::http {
namespace {

constexpr std::array<std::string_view, 3> kAssets = {"index.html", "app.js", "rollcall.js"};
constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";

std::string upgrade_headers() {
  return "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + std::string(kKey) +
         "\r\nSec-WebSocket-Version: 13\r\n";
}

// Keeps the bytes of every parsed request alive for the views in Request.
class RouteTest : public ::testing::Test {
 protected:
  const Request& parse(std::string method, std::string target, std::string headers = "",
                       std::string version = "HTTP/1.1") {
    bytes_.push_back(method + " " + target + " " + version + "\r\nHost: h\r\n" + headers + "\r\n");
    requests_.emplace_back();
    const ParseResult r = parse_request(bytes_.back(), requests_.back());
    EXPECT_EQ(r.status, ParseStatus::Complete) << bytes_.back();
    return requests_.back();
  }

  Routed route_of(std::string method, std::string target, std::string headers = "",
                  std::string version = "HTTP/1.1") {
    const Request& req =
        parse(std::move(method), std::move(target), std::move(headers), std::move(version));
    return route(req, opts_, kAssets);
  }

  Routed upgrade(std::string target, std::string more_headers = "") {
    return route_of("GET", std::move(target), upgrade_headers() + more_headers);
  }

  void expect_error(const Routed& r, int status, std::string_view code) {
    EXPECT_EQ(r.route, Route::Error);
    EXPECT_EQ(r.status, status);
    EXPECT_EQ(r.code, code);
    EXPECT_FALSE(r.message.empty());
  }

  void allow_origins(std::vector<std::string> origins) {
    origins_ = std::move(origins);
    opts_.allowed_origins = origins_;
  }

  std::list<std::string> bytes_;
  std::list<Request> requests_;
  std::vector<std::string> origins_;
  RouteOptions opts_;
};

// ---- the known resources

TEST_F(RouteTest, Healthz) {
  EXPECT_EQ(route_of("GET", "/healthz").route, Route::Healthz);
  EXPECT_EQ(route_of("GET", "/healthz?verbose=1").route, Route::Healthz);
}

TEST_F(RouteTest, Metrics) {
  EXPECT_EQ(route_of("GET", "/metrics").route, Route::Metrics);
}

TEST_F(RouteTest, Tickets) {
  EXPECT_EQ(route_of("POST", "/api/tickets", "Authorization: Bearer x\r\n").route, Route::Tickets);
}

TEST_F(RouteTest, Room) {
  const Routed r = upgrade("/ws/rooms/physics-101");
  ASSERT_EQ(r.route, Route::Room);
  EXPECT_EQ(r.room, "physics-101");
  EXPECT_EQ(r.status, 0);
}

TEST_F(RouteTest, RoomComesFromPathNotQuery) {
  const Routed r = upgrade("/ws/rooms/a_B-9?room=other&user_id=u1");
  ASSERT_EQ(r.route, Route::Room);
  EXPECT_EQ(r.room, "a_B-9");
}

TEST_F(RouteTest, RoomIdOf64Bytes) {
  const std::string room(64, 'r');
  const Routed r = upgrade("/ws/rooms/" + room);
  ASSERT_EQ(r.route, Route::Room);
  EXPECT_EQ(r.room, room);
}

TEST_F(RouteTest, UpgradeTokensCaseInsensitiveAndInLists) {
  const std::string key = "Sec-WebSocket-Key: " + std::string(kKey) + "\r\n";
  const std::string version = "Sec-WebSocket-Version: 13\r\n";
  EXPECT_EQ(route_of("GET", "/ws/rooms/r",
                     "upgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n" + key + version)
                .route,
            Route::Room);
  // Connection split over two lines (RFC 9110 5.3: same as one comma list).
  EXPECT_EQ(route_of("GET", "/ws/rooms/r",
                     "Upgrade: websocket\r\nConnection: keep-alive\r\nConnection: Upgrade\r\n" +
                         key + version)
                .route,
            Route::Room);
}

TEST_F(RouteTest, StaticIndex) {
  const Routed r = route_of("GET", "/");
  ASSERT_EQ(r.route, Route::Static);
  EXPECT_EQ(r.asset, "index.html");
  EXPECT_EQ(route_of("GET", "/?x=1").asset, "index.html");
}

TEST_F(RouteTest, StaticNamedAssets) {
  for (const std::string_view name : kAssets) {
    std::string target = "/";  // built with += : GCC 12 warns (-Wrestrict) on "/" + string
    target += name;
    const Routed r = route_of("GET", target);
    ASSERT_EQ(r.route, Route::Static) << name;
    EXPECT_EQ(r.asset, name);
  }
}

TEST_F(RouteTest, HeadTreatedLikeGetExceptRooms) {
  EXPECT_EQ(route_of("HEAD", "/healthz").route, Route::Healthz);
  EXPECT_EQ(route_of("HEAD", "/metrics").route, Route::Metrics);
  EXPECT_EQ(route_of("HEAD", "/app.js").route, Route::Static);
  const Routed r = route_of("HEAD", "/ws/rooms/r", upgrade_headers());
  expect_error(r, 405, "METHOD_NOT_ALLOWED");
  EXPECT_EQ(r.allow, "GET");
}

// ---- 1. path and room: 404 / 400

TEST_F(RouteTest, UnknownPaths404) {
  for (const char* path :
       {"/no/such/thing", "/healthzz", "/api/nothing", "/healthz/", "/HEALTHZ", "/api/tickets/x",
        "/ws/rooms", "/ws/room/x", "/nope.js", "//", "/index.html/", "/%61pp.js"}) {
    expect_error(route_of("GET", path), 404, "NOT_FOUND");
  }
}

TEST_F(RouteTest, BadRoomIds400) {
  for (const std::string& room :
       std::vector<std::string>{"bad.room", "sp%20ace", "dollar$sign", "caf%C3%A9", "star*", "",
                                "a/b", "x/", std::string(65, 'r')}) {
    expect_error(upgrade("/ws/rooms/" + room), 400, "BAD_ROOM_ID");
  }
}

TEST_F(RouteTest, BadRoomBeforeMethod) {
  expect_error(route_of("POST", "/ws/rooms/bad.room", upgrade_headers()), 400, "BAD_ROOM_ID");
  expect_error(route_of("DELETE", "/ws/rooms/"), 400, "BAD_ROOM_ID");
}

TEST_F(RouteTest, BadRoomBeforeUpgrade) {
  expect_error(route_of("GET", "/ws/rooms/bad.room"), 400, "BAD_ROOM_ID");
}

TEST_F(RouteTest, UnknownPathBeforeMethod) {
  expect_error(route_of("POST", "/nothing"), 404, "NOT_FOUND");
  expect_error(route_of("PURGE", "/x"), 404, "NOT_FOUND");
}

// ---- 2. method: 405 with Allow

TEST_F(RouteTest, PostOnRoom405AllowGet) {
  const Routed r = route_of("POST", "/ws/rooms/x", upgrade_headers());
  expect_error(r, 405, "METHOD_NOT_ALLOWED");
  EXPECT_EQ(r.allow, "GET");
}

TEST_F(RouteTest, MethodBeforeUpgrade) {
  const Routed r = route_of("PUT", "/ws/rooms/x");  // no upgrade either
  expect_error(r, 405, "METHOD_NOT_ALLOWED");
  EXPECT_EQ(r.allow, "GET");
}

TEST_F(RouteTest, GetOnTickets405AllowPost) {
  const Routed r = route_of("GET", "/api/tickets");
  expect_error(r, 405, "METHOD_NOT_ALLOWED");
  EXPECT_EQ(r.allow, "POST");
}

TEST_F(RouteTest, PostOnReadOnlyResources405) {
  for (const char* path : {"/healthz", "/metrics", "/", "/app.js"}) {
    const Routed r = route_of("POST", path);
    expect_error(r, 405, "METHOD_NOT_ALLOWED");
    EXPECT_EQ(r.allow, "GET, HEAD") << path;
  }
}

TEST_F(RouteTest, LowercaseMethodIsNotGet) {
  const Routed r = route_of("get", "/healthz");
  expect_error(r, 405, "METHOD_NOT_ALLOWED");
  EXPECT_NE(r.message.find("get"), std::string::npos);
}

// ---- 3. upgrade: 426 / 400

TEST_F(RouteTest, PlainGetOnRoom426) {
  const Routed r = route_of("GET", "/ws/rooms/x");
  expect_error(r, 426, "UPGRADE_REQUIRED");
  EXPECT_EQ(r.extra_headers, "Upgrade: websocket\r\n");
}

TEST_F(RouteTest, UpgradeWithoutConnectionUpgrade426) {
  const std::string rest =
      "Sec-WebSocket-Key: " + std::string(kKey) + "\r\nSec-WebSocket-Version: 13\r\n";
  expect_error(route_of("GET", "/ws/rooms/x", "Upgrade: websocket\r\nConnection: close\r\n" + rest),
               426, "UPGRADE_REQUIRED");
  expect_error(route_of("GET", "/ws/rooms/x", "Upgrade: websocket\r\n" + rest), 426,
               "UPGRADE_REQUIRED");
}

TEST_F(RouteTest, ConnectionUpgradeWithoutWebsocket426) {
  const std::string rest =
      "Sec-WebSocket-Key: " + std::string(kKey) + "\r\nSec-WebSocket-Version: 13\r\n";
  expect_error(route_of("GET", "/ws/rooms/x", "Upgrade: h2c\r\nConnection: Upgrade\r\n" + rest),
               426, "UPGRADE_REQUIRED");
  expect_error(route_of("GET", "/ws/rooms/x", "Connection: Upgrade\r\n" + rest), 426,
               "UPGRADE_REQUIRED");
}

TEST_F(RouteTest, Http10CannotUpgrade) {
  expect_error(route_of("GET", "/ws/rooms/x", upgrade_headers(), "HTTP/1.0"), 426,
               "UPGRADE_REQUIRED");
}

TEST_F(RouteTest, BadWebSocketVersion426WithVersionHeader) {
  const std::string head =
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + std::string(kKey) +
      "\r\n";
  for (const char* version : {"Sec-WebSocket-Version: 8\r\n", "Sec-WebSocket-Version: 13, 8\r\n",
                              "Sec-WebSocket-Version: 130\r\n", ""}) {
    const Routed r = route_of("GET", "/ws/rooms/x", head + version);
    expect_error(r, 426, "UPGRADE_REQUIRED");
    EXPECT_EQ(r.extra_headers, "Sec-WebSocket-Version: 13\r\n") << version;
  }
}

TEST_F(RouteTest, MissingKey400) {
  expect_error(
      route_of("GET", "/ws/rooms/x",
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"),
      400, "BAD_REQUEST");
}

TEST_F(RouteTest, InvalidKeys400) {
  const std::string head =
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
  for (const char* key : {"", "dGhlIHNhbXBsZSBub25jZQ=",  // 23 characters
                          "dGhlIHNhbXBsZSBub25jZQ===",    // 25 characters
                          "dGhlIHNhbXBsZSBub25jZ===",     // 15 bytes of data
                          "dGhlIHNhbXBsZSBub25jZQ==x", "dGhlIHNhbXBsZSBub2!jZQ==",
                          "dGhlIHNhbXBsZSBub25jZQAA", "dGhlIHNhbXBsZSBub25jZ-_=="}) {
    expect_error(route_of("GET", "/ws/rooms/x", head + "Sec-WebSocket-Key: " + key + "\r\n"), 400,
                 "BAD_REQUEST");
  }
}

TEST_F(RouteTest, TwoKeys400) {
  expect_error(upgrade("/ws/rooms/x", "Sec-WebSocket-Key: " + std::string(kKey) + "\r\n"), 400,
               "BAD_REQUEST");
}

TEST_F(RouteTest, UpgradeBeforeOrigin) {
  allow_origins({"https://school.example"});
  expect_error(route_of("GET", "/ws/rooms/x", "Origin: https://evil.example\r\n"), 426,
               "UPGRADE_REQUIRED");
  expect_error(route_of("GET", "/ws/rooms/x",
                        "Origin: https://evil.example\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"),
               400, "BAD_REQUEST");
}

// ---- 4. Origin: 403

TEST_F(RouteTest, AllowedOriginAccepted) {
  allow_origins({"https://a.example", "https://school.example"});
  EXPECT_EQ(upgrade("/ws/rooms/x", "Origin: https://school.example\r\n").route, Route::Room);
}

TEST_F(RouteTest, NoOriginHeaderAccepted) {
  allow_origins({"https://school.example"});
  EXPECT_EQ(upgrade("/ws/rooms/x").route, Route::Room);
}

TEST_F(RouteTest, AnyOriginWhenListEmpty) {
  EXPECT_EQ(upgrade("/ws/rooms/x", "Origin: https://anything.example\r\n").route, Route::Room);
}

TEST_F(RouteTest, OriginNotListed403) {
  allow_origins({"https://school.example"});
  for (const char* origin : {"https://evil.example", "https://school.example/",
                             "https://SCHOOL.example", "http://school.example", "null", ""}) {
    expect_error(upgrade("/ws/rooms/x", "Origin: " + std::string(origin) + "\r\n"), 403,
                 "ORIGIN_NOT_ALLOWED");
  }
}

TEST_F(RouteTest, OriginCheckedOnTickets) {
  allow_origins({"https://school.example"});
  expect_error(route_of("POST", "/api/tickets", "Origin: https://evil.example\r\n"), 403,
               "ORIGIN_NOT_ALLOWED");
  EXPECT_EQ(route_of("POST", "/api/tickets", "Origin: https://school.example\r\n").route,
            Route::Tickets);
}

TEST_F(RouteTest, OriginNotCheckedOnPublicResources) {
  allow_origins({"https://school.example"});
  EXPECT_EQ(route_of("GET", "/healthz", "Origin: https://evil.example\r\n").route, Route::Healthz);
  EXPECT_EQ(route_of("GET", "/app.js", "Origin: https://evil.example\r\n").route, Route::Static);
}

TEST_F(RouteTest, MethodBeforeOrigin) {
  allow_origins({"https://school.example"});
  expect_error(route_of("GET", "/api/tickets", "Origin: https://evil.example\r\n"), 405,
               "METHOD_NOT_ALLOWED");
}

// ---- the error answer of a Routed

TEST_F(RouteTest, ErrorResponseCarriesAllow) {
  const std::string r = error_response(route_of("POST", "/ws/rooms/x"));
  EXPECT_EQ(r.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u);
  EXPECT_NE(r.find("\r\nAllow: GET\r\n"), std::string::npos);
  EXPECT_NE(r.find("\r\nConnection: close\r\n"), std::string::npos);
  EXPECT_NE(r.find(R"("error":"METHOD_NOT_ALLOWED")"), std::string::npos);
}

TEST_F(RouteTest, ErrorResponseCarriesVersionHeader) {
  const std::string r = error_response(
      route_of("GET", "/ws/rooms/x",
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 7\r\n"));
  EXPECT_EQ(r.rfind("HTTP/1.1 426 Upgrade Required\r\n", 0), 0u);
  EXPECT_NE(r.find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos);
  EXPECT_EQ(r.find("Allow:"), std::string::npos);
}

TEST_F(RouteTest, ErrorResponseFor404) {
  const std::string r = error_response(route_of("GET", "/nothing"));
  EXPECT_EQ(r.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u);
  EXPECT_NE(r.find(R"({"error":"NOT_FOUND","message":")"), std::string::npos);
}

// ---- charsets

TEST(Charsets, RoomIds) {
  EXPECT_TRUE(valid_room_id("physics-101"));
  EXPECT_TRUE(valid_room_id("A_z-0"));
  EXPECT_TRUE(valid_room_id(std::string(64, 'x')));
  EXPECT_FALSE(valid_room_id(""));
  EXPECT_FALSE(valid_room_id(std::string(65, 'x')));
  for (const char* bad : {"a.b", "a b", "a%20", "a/b", "a*", "caf\xC3\xA9", "a+b", "a~"}) {
    EXPECT_FALSE(valid_room_id(bad)) << bad;
  }
}

TEST(Charsets, UserIds) {
  EXPECT_TRUE(valid_user_id("u42"));
  EXPECT_TRUE(valid_user_id("ada.lovelace_1-2"));
  EXPECT_TRUE(valid_user_id(std::string(64, '.')));
  EXPECT_FALSE(valid_user_id(""));
  EXPECT_FALSE(valid_user_id(std::string(65, 'u')));
  for (const char* bad : {"a b", "a@b", "a/b", "\xC3\xA9", "a:b", "a\n"}) {
    EXPECT_FALSE(valid_user_id(bad)) << bad;
  }
}

TEST(Charsets, Names) {
  EXPECT_TRUE(valid_name("Ada Lovelace"));
  EXPECT_TRUE(valid_name("Zo\xC3\xA9 \xF0\x9F\x91\x8D"));
  EXPECT_TRUE(valid_name(std::string(64, 'n')));
  EXPECT_TRUE(valid_name("\xC2\xA0"));  // U+00A0 is not a control
  EXPECT_FALSE(valid_name(""));
  EXPECT_FALSE(valid_name(std::string(65, 'n')));
  EXPECT_FALSE(valid_name(std::string(21, '\0')));
  for (const char* bad : {"a\tb", "a\nb", "\x1f", "a\x7f", "\xC2\x85", "\xC2\x9F", "\xFF", "\xC3",
                          "\xED\xA0\x80", "\xC0\xAF"}) {
    EXPECT_FALSE(valid_name(bad)) << bad;
  }
}

// ---- parse_upgrade_query

UpgradeQuery query_ok(std::string_view raw) {
  Result<UpgradeQuery> r = parse_upgrade_query(raw);
  EXPECT_TRUE(r.is_ok()) << raw << ": " << (r.is_ok() ? "" : r.status().message());
  return r.is_ok() ? r.value() : UpgradeQuery{};
}

// Expects an error whose message names `param`.
void query_error(std::string_view raw, std::string_view param) {
  Result<UpgradeQuery> r = parse_upgrade_query(raw);
  ASSERT_FALSE(r.is_ok()) << raw;
  EXPECT_NE(r.status().message().find(param), std::string::npos) << r.status().message();
}

TEST(UpgradeQueryTest, Empty) {
  const UpgradeQuery q = query_ok("");
  EXPECT_FALSE(q.has_ticket);
  EXPECT_FALSE(q.has_user_id);
  EXPECT_FALSE(q.has_name);
  EXPECT_FALSE(q.has_since);
}

TEST(UpgradeQueryTest, Ticket) {
  const UpgradeQuery q = query_ok("ticket=abc%2Fdef%3D%3D");
  EXPECT_TRUE(q.has_ticket);
  EXPECT_EQ(q.ticket, "abc/def==");
  EXPECT_FALSE(q.has_user_id);
}

TEST(UpgradeQueryTest, AnonymousIdentity) {
  const UpgradeQuery q = query_ok("user_id=u42&name=Ada+Lovelace");
  EXPECT_TRUE(q.has_user_id);
  EXPECT_EQ(q.user_id, "u42");
  EXPECT_TRUE(q.has_name);
  EXPECT_EQ(q.name, "Ada Lovelace");
}

TEST(UpgradeQueryTest, NameUtf8Decoded) {
  EXPECT_EQ(query_ok("name=Zo%C3%A9").name, "Zo\xC3\xA9");
}

TEST(UpgradeQueryTest, NameTrimmed) {
  EXPECT_EQ(query_ok("name=%20%09Ada%0A%0D%0B%0C+").name, "Ada");
}

TEST(UpgradeQueryTest, NameLengthAfterTrimming) {
  EXPECT_EQ(query_ok("name=+" + std::string(64, 'n') + "+").name, std::string(64, 'n'));
  query_error("name=" + std::string(65, 'n'), "name");
}

TEST(UpgradeQueryTest, NameEmptyOrBlank) {
  query_error("name=", "name");
  query_error("name", "name");
  query_error("name=+%09+", "name");
}

TEST(UpgradeQueryTest, NameWithControlCharacter) {
  query_error("name=a%01b", "name");
  query_error("name=a%7Fb", "name");
  query_error("name=a%C2%85b", "name");
  query_error("name=a%0Ab", "name");
  query_error("name=a%00", "name");
}

TEST(UpgradeQueryTest, NameInvalidUtf8) {
  query_error("name=%FF", "name");
  query_error("name=%C3", "name");
  query_error("name=%ED%A0%80", "name");
}

TEST(UpgradeQueryTest, UserIdInvalid) {
  query_error("user_id=", "user_id");
  query_error("user_id=a+b", "user_id");
  query_error("user_id=a%40b", "user_id");
  query_error("user_id=" + std::string(65, 'u'), "user_id");
}

TEST(UpgradeQueryTest, SinceValid) {
  EXPECT_EQ(query_ok("since=0").since, 0u);
  EXPECT_TRUE(query_ok("since=0").has_since);
  EXPECT_EQ(query_ok("since=17").since, 17u);
  EXPECT_EQ(query_ok("since=007").since, 7u);
  EXPECT_EQ(query_ok("since=18446744073709551615").since, UINT64_MAX);
}

TEST(UpgradeQueryTest, SinceInvalid) {
  for (const char* bad :
       {"", "-1", "%2B1", "+1", "1+", "1.5", "1e3", "x", "18446744073709551616", "0x10"}) {
    query_error(std::string("since=") + bad, "since");
  }
}

TEST(UpgradeQueryTest, MalformedEscapeNamesTheParameter) {
  query_error("ticket=%zz", "ticket");
  query_error("user_id=%4", "user_id");
  query_error("name=%", "name");
  query_error("since=%3", "since");
}

TEST(UpgradeQueryTest, RepeatedParameterFirstWins) {
  const UpgradeQuery q = query_ok("user_id=a&user_id=b&since=1&since=2&ticket=t1&ticket=t2");
  EXPECT_EQ(q.user_id, "a");
  EXPECT_EQ(q.since, 1u);
  EXPECT_EQ(q.ticket, "t1");
  // Later occurrences are ignored, even invalid ones.
  EXPECT_EQ(query_ok("name=Ada&name=%zz&name=").name, "Ada");
}

TEST(UpgradeQueryTest, FirstInvalidOccurrenceFails) {
  query_error("since=x&since=1", "since");
}

TEST(UpgradeQueryTest, UnknownAndRoomIgnored) {
  const UpgradeQuery q = query_ok("room=other&foo=%zz&x&%zz=1&user_id=u1");
  EXPECT_EQ(q.user_id, "u1");
  EXPECT_FALSE(q.has_name);
}

TEST(UpgradeQueryTest, KeysAreDecoded) {
  const UpgradeQuery q = query_ok("user%5Fid=u1&%6Eame=Bo");
  EXPECT_EQ(q.user_id, "u1");
  EXPECT_EQ(q.name, "Bo");
}

}  // namespace
}  // namespace rc::http
