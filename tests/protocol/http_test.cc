#include "protocol/http.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

namespace rc::http {
namespace {

constexpr std::string_view kUpgrade =
    "GET /ws/rooms/physics-101?user_id=u42&name=Ada HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

ParseResult parse(std::string_view bytes, Request& req) {
  return parse_request(bytes, req);
}

// Parses bytes expected to be a bad head and returns the result.
ParseResult parse_error(std::string_view bytes) {
  Request req;
  return parse_request(bytes, req);
}

void expect_bad_request(std::string_view bytes) {
  const ParseResult r = parse_error(bytes);
  EXPECT_EQ(r.status, ParseStatus::Error) << bytes;
  EXPECT_EQ(r.http_status, 400) << bytes;
  EXPECT_EQ(r.error_code, "BAD_REQUEST") << bytes;
  EXPECT_FALSE(r.message.empty());
}

void expect_too_large(std::string_view bytes) {
  const ParseResult r = parse_error(bytes);
  EXPECT_EQ(r.status, ParseStatus::Error);
  EXPECT_EQ(r.http_status, 431);
  EXPECT_EQ(r.error_code, "HEADERS_TOO_LARGE");
  EXPECT_FALSE(r.message.empty());
}

bool view_inside(std::string_view view, std::string_view whole) {
  return view.empty() ||
         (view.data() >= whole.data() && view.data() + view.size() <= whole.data() + whole.size());
}

// A head "GET / HTTP/1.1\r\nX: <padding>\r\n\r\n" of exactly `total` bytes.
std::string head_of_size(std::size_t total) {
  const std::string start = "GET / HTTP/1.1\r\nX: ";
  const std::string end = "\r\n\r\n";
  return start + std::string(total - start.size() - end.size(), 'a') + end;
}

std::string head_with_headers(std::size_t count) {
  std::string head = "GET / HTTP/1.1\r\n";
  for (std::size_t i = 0; i < count; ++i) head += "X-" + std::to_string(i) + ": v\r\n";
  return head + "\r\n";
}

// ---- complete heads

TEST(ParseRequest, CompleteUpgradeRequest) {
  Request req;
  const ParseResult r = parse(kUpgrade, req);
  ASSERT_EQ(r.status, ParseStatus::Complete);
  EXPECT_EQ(r.http_status, 0);
  EXPECT_EQ(req.method, Method::Get);
  EXPECT_EQ(req.method_text, "GET");
  EXPECT_EQ(req.target, "/ws/rooms/physics-101?user_id=u42&name=Ada");
  EXPECT_EQ(req.path, "/ws/rooms/physics-101");
  EXPECT_EQ(req.query, "user_id=u42&name=Ada");
  EXPECT_EQ(req.version_minor, 1);
  EXPECT_EQ(req.head_bytes, kUpgrade.size());
  EXPECT_EQ(req.content_length, 0u);
  ASSERT_EQ(req.header_count, 5u);
  EXPECT_EQ(req.headers[0].name, "Host");
  EXPECT_EQ(req.headers[0].value, "localhost:8080");
  EXPECT_EQ(req.headers[4].name, "Sec-WebSocket-Version");
  EXPECT_EQ(req.headers[4].value, "13");
  for (std::size_t i = 0; i < req.header_count; ++i) {
    EXPECT_TRUE(view_inside(req.headers[i].name, kUpgrade));
    EXPECT_TRUE(view_inside(req.headers[i].value, kUpgrade));
  }
  EXPECT_TRUE(view_inside(req.target, kUpgrade));
}

TEST(ParseRequest, MethodsAreCaseSensitive) {
  const std::vector<std::pair<std::string, Method>> cases = {
      {"GET", Method::Get},     {"HEAD", Method::Head},     {"POST", Method::Post},
      {"PUT", Method::Put},     {"DELETE", Method::Delete}, {"OPTIONS", Method::Options},
      {"PATCH", Method::Patch}, {"get", Method::Other},     {"PURGE", Method::Other},
  };
  for (const auto& [text, method] : cases) {
    const std::string bytes = text + " / HTTP/1.1\r\n\r\n";
    Request req;
    ASSERT_EQ(parse(bytes, req).status, ParseStatus::Complete) << text;
    EXPECT_EQ(req.method, method) << text;
    EXPECT_EQ(req.method_text, text);
  }
}

TEST(ParseRequest, Http10) {
  Request req;
  ASSERT_EQ(parse("GET /healthz HTTP/1.0\r\n\r\n", req).status, ParseStatus::Complete);
  EXPECT_EQ(req.version_minor, 0);
  EXPECT_EQ(req.header_count, 0u);
  EXPECT_EQ(req.query, "");
}

TEST(ParseRequest, QuerySplitsAtFirstQuestionMark) {
  Request req;
  ASSERT_EQ(parse("GET /a?b=1?c HTTP/1.1\r\n\r\n", req).status, ParseStatus::Complete);
  EXPECT_EQ(req.path, "/a");
  EXPECT_EQ(req.query, "b=1?c");
  ASSERT_EQ(parse("GET /a? HTTP/1.1\r\n\r\n", req).status, ParseStatus::Complete);
  EXPECT_EQ(req.path, "/a");
  EXPECT_EQ(req.query, "");
}

TEST(ParseRequest, HeaderValuesTrimmedOfOws) {
  Request req;
  const std::string_view bytes = "GET / HTTP/1.1\r\nA: \t x y \t\r\nB:\r\nC:z\r\n\r\n";
  ASSERT_EQ(parse(bytes, req).status, ParseStatus::Complete);
  ASSERT_EQ(req.header_count, 3u);
  EXPECT_EQ(req.header("A"), "x y");
  EXPECT_EQ(req.header("B"), "");
  EXPECT_TRUE(req.has_header("B"));
  EXPECT_EQ(req.header("C"), "z");
}

TEST(ParseRequest, ObsTextAllowedInValues) {
  Request req;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nX-Name: caf\xC3\xA9\r\n\r\n", req).status,
            ParseStatus::Complete);
  EXPECT_EQ(req.header("x-name"), "caf\xC3\xA9");
}

TEST(ParseRequest, HeaderLookupIsCaseInsensitiveFirstWins) {
  Request req;
  const std::string_view bytes =
      "GET / HTTP/1.1\r\nsec-websocket-KEY: one\r\nSec-WebSocket-Key: two\r\n\r\n";
  ASSERT_EQ(parse(bytes, req).status, ParseStatus::Complete);
  EXPECT_EQ(req.header("Sec-WebSocket-Key"), "one");
  EXPECT_EQ(req.header("SEC-WEBSOCKET-KEY"), "one");
  EXPECT_TRUE(req.has_header("sec-websocket-key"));
  EXPECT_FALSE(req.has_header("Sec-WebSocket-Keys"));
  EXPECT_EQ(req.header("Origin"), "");
  EXPECT_FALSE(req.has_header("Origin"));
}

TEST(ParseRequest, ContentLengthAndBodyLeftToCaller) {
  const std::string head = "POST /api/tickets HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
  const std::string bytes = head + "hello";
  Request req;
  ASSERT_EQ(parse(bytes, req).status, ParseStatus::Complete);
  EXPECT_EQ(req.method, Method::Post);
  EXPECT_EQ(req.content_length, 5u);
  EXPECT_EQ(req.head_bytes, head.size());
  EXPECT_EQ(bytes.substr(req.head_bytes), "hello");
}

TEST(ParseRequest, ContentLengthLimits) {
  Request req;
  ASSERT_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", req).status,
            ParseStatus::Complete);
  EXPECT_EQ(req.content_length, UINT64_MAX);
  ASSERT_EQ(parse("POST / HTTP/1.1\r\ncontent-length:  007 \r\n\r\n", req).status,
            ParseStatus::Complete);
  EXPECT_EQ(req.content_length, 7u);
}

TEST(ParseRequest, PipelinedBytesAfterHead) {
  const std::string first = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string second = "GET /metrics HTTP/1.1\r\n\r\n";
  const std::string bytes = first + second + "GET /partial";
  Request req;
  ASSERT_EQ(parse(bytes, req).status, ParseStatus::Complete);
  EXPECT_EQ(req.path, "/healthz");
  EXPECT_EQ(req.head_bytes, first.size());
  const std::string_view rest = std::string_view(bytes).substr(req.head_bytes);
  ASSERT_EQ(parse(rest, req).status, ParseStatus::Complete);
  EXPECT_EQ(req.path, "/metrics");
  EXPECT_EQ(req.head_bytes, second.size());
  EXPECT_EQ(parse(rest.substr(req.head_bytes), req).status, ParseStatus::Incomplete);
}

TEST(ParseRequest, ReusedRequestIsReset) {
  Request req;
  ASSERT_EQ(parse("POST /x?q HTTP/1.0\r\nContent-Length: 3\r\nA: b\r\n\r\n", req).status,
            ParseStatus::Complete);
  ASSERT_EQ(parse("GET /y HTTP/1.1\r\n\r\n", req).status, ParseStatus::Complete);
  EXPECT_EQ(req.content_length, 0u);
  EXPECT_EQ(req.header_count, 0u);
  EXPECT_EQ(req.query, "");
  EXPECT_EQ(req.version_minor, 1);
  EXPECT_FALSE(req.has_header("A"));
}

// ---- incomplete heads

TEST(ParseRequest, IncompleteHeads) {
  for (const std::string_view bytes :
       {std::string_view(""), std::string_view("G"), std::string_view("GET / HTTP/1.1"),
        std::string_view("GET / HTTP/1.1\r"), std::string_view("GET / HTTP/1.1\r\n"),
        std::string_view("GET / HTTP/1.1\r\nHost: a\r\n"),
        std::string_view("GET / HTTP/1.1\r\nHost: a\r\n\r")}) {
    Request req;
    const ParseResult r = parse(bytes, req);
    EXPECT_EQ(r.status, ParseStatus::Incomplete) << bytes;
    EXPECT_EQ(r.http_status, 0);
  }
}

TEST(ParseRequest, ByteByByteFeeding) {
  const std::string bytes = std::string(kUpgrade) + "pipelined";
  for (std::size_t n = 0; n < kUpgrade.size(); ++n) {
    Request req;
    ASSERT_EQ(parse(std::string_view(bytes).substr(0, n), req).status, ParseStatus::Incomplete)
        << "prefix of " << n << " bytes";
  }
  for (std::size_t n = kUpgrade.size(); n <= bytes.size(); ++n) {
    Request req;
    ASSERT_EQ(parse(std::string_view(bytes).substr(0, n), req).status, ParseStatus::Complete);
    EXPECT_EQ(req.head_bytes, kUpgrade.size());
    EXPECT_EQ(req.header("Sec-WebSocket-Key"), "dGhlIHNhbXBsZSBub25jZQ==");
  }
}

TEST(ParseRequest, ErrorReportedBeforeHeadEnds) {
  // The bad line is complete, so there is no need to wait for the blank line.
  expect_bad_request("GET / HTTP/1.1\r\nBad Header: x\r\n");
  expect_bad_request("GET / HTTP/1.1\n");
}

// ---- 400: line endings

TEST(ParseRequest, BareLfEndingRequestLine) {
  expect_bad_request("GET / HTTP/1.1\n\n");
}

TEST(ParseRequest, BareLfEndingHeaderLine) {
  expect_bad_request("GET / HTTP/1.1\r\nHost: a\n\r\n");
}

TEST(ParseRequest, BareLfAsBlankLine) {
  expect_bad_request("GET / HTTP/1.1\r\nHost: a\r\n\n");
}

TEST(ParseRequest, BareCrInRequestLine) {
  expect_bad_request("GET / HTTP/1.1\rHost: a\r\n\r\n");
  expect_bad_request("GET /a\rb HTTP/1.1\r\n\r\n");
}

TEST(ParseRequest, BareCrInHeaderValue) {
  expect_bad_request("GET / HTTP/1.1\r\nA: x\ry\r\n\r\n");
}

TEST(ParseRequest, BareCrInHeaderName) {
  expect_bad_request("GET / HTTP/1.1\r\nA\rB: x\r\n\r\n");
}

TEST(ParseRequest, EmptyLineBeforeRequestLine) {
  expect_bad_request("\r\nGET / HTTP/1.1\r\n\r\n");
}

// ---- 400: request line

TEST(ParseRequest, RequestLineWithoutSpaces) {
  expect_bad_request("GET\r\n\r\n");
}

TEST(ParseRequest, RequestLineMissingVersion) {
  expect_bad_request("GET /\r\n\r\n");
}

TEST(ParseRequest, RequestLineDoubleSpace) {
  expect_bad_request("GET  / HTTP/1.1\r\n\r\n");
  expect_bad_request("GET /  HTTP/1.1\r\n\r\n");
}

TEST(ParseRequest, RequestLineTrailingSpace) {
  expect_bad_request("GET / HTTP/1.1 \r\n\r\n");
}

TEST(ParseRequest, RequestLineExtraPart) {
  expect_bad_request("GET / x HTTP/1.1\r\n\r\n");
}

TEST(ParseRequest, EmptyMethod) {
  expect_bad_request(" / HTTP/1.1\r\n\r\n");
}

TEST(ParseRequest, MethodNotAToken) {
  expect_bad_request("G(T / HTTP/1.1\r\n\r\n");
  expect_bad_request("G\tT / HTTP/1.1\r\n\r\n");
}

TEST(ParseRequest, TargetNotOriginForm) {
  expect_bad_request("GET http://host/ HTTP/1.1\r\n\r\n");
  expect_bad_request("OPTIONS * HTTP/1.1\r\n\r\n");
  expect_bad_request("GET healthz HTTP/1.1\r\n\r\n");
}

TEST(ParseRequest, TargetWithInvalidBytes) {
  expect_bad_request(std::string("GET /a") + '\0' + "b HTTP/1.1\r\n\r\n");
  expect_bad_request("GET /a\x7f HTTP/1.1\r\n\r\n");
  expect_bad_request("GET /caf\xC3\xA9 HTTP/1.1\r\n\r\n");
  expect_bad_request("GET /a\tb HTTP/1.1\r\n\r\n");
}

TEST(ParseRequest, BadVersion) {
  for (const char* version : {"HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "http/1.1", "HTTP/1.1x", "HTTP/1",
                              "HTTP/11", "HTTPS/1.1"}) {
    expect_bad_request(std::string("GET / ") + version + "\r\n\r\n");
  }
}

// ---- 400: header lines

TEST(ParseRequest, HeaderWithoutColon) {
  expect_bad_request("GET / HTTP/1.1\r\nHost a\r\n\r\n");
}

TEST(ParseRequest, WhitespaceBeforeColon) {
  expect_bad_request("GET / HTTP/1.1\r\nHost : a\r\n\r\n");
  expect_bad_request("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n");
}

TEST(ParseRequest, EmptyHeaderName) {
  expect_bad_request("GET / HTTP/1.1\r\n: a\r\n\r\n");
}

TEST(ParseRequest, HeaderNameNotAToken) {
  expect_bad_request("GET / HTTP/1.1\r\nX(Y): a\r\n\r\n");
  expect_bad_request("GET / HTTP/1.1\r\nX\xC3\xA9: a\r\n\r\n");
}

TEST(ParseRequest, ControlCharacterInValue) {
  expect_bad_request("GET / HTTP/1.1\r\nA: x\x01y\r\n\r\n");
  expect_bad_request("GET / HTTP/1.1\r\nA: x\x7f\r\n\r\n");
  expect_bad_request(std::string("GET / HTTP/1.1\r\nA: ") + '\0' + "\r\n\r\n");
}

TEST(ParseRequest, ObsFold) {
  expect_bad_request("GET / HTTP/1.1\r\nA: x\r\n y\r\n\r\n");
  expect_bad_request("GET / HTTP/1.1\r\nA: x\r\n\ty\r\n\r\n");
}

TEST(ParseRequest, WhitespaceBeforeFirstHeader) {
  expect_bad_request("GET / HTTP/1.1\r\n Host: a\r\n\r\n");
}

TEST(ParseRequest, InvalidContentLength) {
  for (const char* value : {"", "abc", "-1", "+5", "1 2", "5, 5", "0x10", "1.0",
                            "18446744073709551616", "99999999999999999999999"}) {
    expect_bad_request(std::string("POST / HTTP/1.1\r\nContent-Length: ") + value + "\r\n\r\n");
  }
}

TEST(ParseRequest, DuplicateContentLength) {
  expect_bad_request("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n");
  expect_bad_request("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
}

TEST(ParseRequest, TransferEncodingNotImplemented) {
  for (const char* line : {"Transfer-Encoding: chunked", "transfer-encoding: identity"}) {
    Request req;
    const ParseResult r = parse(std::string("POST / HTTP/1.1\r\n") + line + "\r\n\r\n", req);
    EXPECT_EQ(r.status, ParseStatus::Error);
    EXPECT_EQ(r.http_status, 501);
    EXPECT_EQ(r.error_code, "NOT_IMPLEMENTED");
  }
}

// ---- 431

TEST(ParseRequest, HeadOfExactlyTheLimitIsComplete) {
  const std::string bytes = head_of_size(limits::http_head_bytes_max);
  ASSERT_EQ(bytes.size(), 8192u);
  Request req;
  ASSERT_EQ(parse(bytes, req).status, ParseStatus::Complete);
  EXPECT_EQ(req.head_bytes, 8192u);
}

TEST(ParseRequest, HeadOneByteOverTheLimit) {
  expect_too_large(head_of_size(limits::http_head_bytes_max + 1));
}

TEST(ParseRequest, UnfinishedHeadOverTheLimit) {
  const std::string bytes = head_of_size(limits::http_head_bytes_max + 1);
  const std::string unfinished = bytes.substr(0, limits::http_head_bytes_max + 1 - 4);
  // At the limit there may still be a CRLF CRLF to come; one byte past it there cannot.
  Request req;
  EXPECT_EQ(parse(std::string_view(unfinished).substr(0, 8192), req).status,
            ParseStatus::Incomplete);
  expect_too_large(unfinished + "aaaa");
  expect_too_large(std::string(limits::http_head_bytes_max + 1, 'G'));
}

TEST(ParseRequest, HeadEndingPastTheLimitEvenWhenMoreBytesFollow) {
  const std::string bytes = head_of_size(9000) + "GET / HTTP/1.1\r\n\r\n";
  expect_too_large(bytes);
}

TEST(ParseRequest, MaxHeaderCountAccepted) {
  const std::string bytes = head_with_headers(limits::http_headers_max);
  Request req;
  ASSERT_EQ(parse(bytes, req).status, ParseStatus::Complete);
  EXPECT_EQ(req.header_count, limits::http_headers_max);
  EXPECT_EQ(req.header("X-63"), "v");
}

TEST(ParseRequest, TooManyHeaders) {
  expect_too_large(head_with_headers(limits::http_headers_max + 1));
}

// ---- header_has_token

TEST(HeaderHasToken, FindsTokensCaseInsensitively) {
  EXPECT_TRUE(header_has_token("Upgrade", "upgrade"));
  EXPECT_TRUE(header_has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(header_has_token("  UPGRADE\t,keep-alive", "upgrade"));
  EXPECT_TRUE(header_has_token("a,,b", "b"));
  EXPECT_TRUE(header_has_token("websocket", "WebSocket"));
}

TEST(HeaderHasToken, RejectsPartialMatches) {
  EXPECT_FALSE(header_has_token("", "upgrade"));
  EXPECT_FALSE(header_has_token("upgraded", "upgrade"));
  EXPECT_FALSE(header_has_token("no-upgrade", "upgrade"));
  EXPECT_FALSE(header_has_token("keep-alive", "upgrade"));
  EXPECT_FALSE(header_has_token("up grade", "upgrade"));
}

// ---- form_decode

std::string decoded(std::string_view in) {
  std::string out;
  EXPECT_TRUE(form_decode(in, out)) << in;
  return out;
}

TEST(FormDecode, PercentEscapes) {
  EXPECT_EQ(decoded("%41"), "A");
  EXPECT_EQ(decoded("a%2Bb"), "a+b");
  EXPECT_EQ(decoded("%c3%a9"), "\xC3\xA9");
  EXPECT_EQ(decoded("caf%C3%A9"), "caf\xC3\xA9");
  EXPECT_EQ(decoded("%00"), std::string(1, '\0'));
  EXPECT_EQ(decoded("%25"), "%");
}

TEST(FormDecode, PlusIsSpace) {
  EXPECT_EQ(decoded("Ada+Lovelace"), "Ada Lovelace");
  EXPECT_EQ(decoded("+"), " ");
}

TEST(FormDecode, PlainBytesCopied) {
  EXPECT_EQ(decoded(""), "");
  EXPECT_EQ(decoded("u42.x-y_z"), "u42.x-y_z");
}

TEST(FormDecode, AppendsToOut) {
  std::string out = "x=";
  EXPECT_TRUE(form_decode("%41b", out));
  EXPECT_EQ(out, "x=Ab");
}

TEST(FormDecode, BadHexDigits) {
  std::string out = "keep";
  EXPECT_FALSE(form_decode("a%zz", out));
  EXPECT_EQ(out, "keep");
  EXPECT_FALSE(form_decode("%4g", out));
  EXPECT_FALSE(form_decode("%g4", out));
  EXPECT_EQ(out, "keep");
}

TEST(FormDecode, PercentAtEnd) {
  std::string out;
  EXPECT_FALSE(form_decode("abc%", out));
  EXPECT_FALSE(form_decode("abc%4", out));
  EXPECT_EQ(out, "");
}

// ---- for_each_query_param

std::vector<std::pair<std::string, std::string>> params(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  for_each_query_param(query, [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k), std::string(v));
  });
  return out;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(QueryParams, SplitsPairs) {
  EXPECT_EQ(params("a=1&b=2"), (Pairs{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(params(""), Pairs{});
}

TEST(QueryParams, SkipsEmptyPairs) {
  EXPECT_EQ(params("&&a=1&&b=&"), (Pairs{{"a", "1"}, {"b", ""}}));
  EXPECT_EQ(params("&"), Pairs{});
}

TEST(QueryParams, KeyWithoutEquals) {
  EXPECT_EQ(params("flag&k=v"), (Pairs{{"flag", ""}, {"k", "v"}}));
}

TEST(QueryParams, ValueRunsFromFirstEquals) {
  EXPECT_EQ(params("a=b=c&=x"), (Pairs{{"a", "b=c"}, {"", "x"}}));
}

TEST(QueryParams, NotDecoded) {
  EXPECT_EQ(params("user%5Fid=a+b%20c"), (Pairs{{"user%5Fid", "a+b%20c"}}));
}

// ---- responses

TEST(ReasonPhrase, KnownCodes) {
  EXPECT_EQ(reason_phrase(101), "Switching Protocols");
  EXPECT_EQ(reason_phrase(200), "OK");
  EXPECT_EQ(reason_phrase(201), "Created");
  EXPECT_EQ(reason_phrase(400), "Bad Request");
  EXPECT_EQ(reason_phrase(401), "Unauthorized");
  EXPECT_EQ(reason_phrase(403), "Forbidden");
  EXPECT_EQ(reason_phrase(404), "Not Found");
  EXPECT_EQ(reason_phrase(405), "Method Not Allowed");
  EXPECT_EQ(reason_phrase(413), "Content Too Large");
  EXPECT_EQ(reason_phrase(426), "Upgrade Required");
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reason_phrase(500), "Internal Server Error");
  EXPECT_EQ(reason_phrase(501), "Not Implemented");
  EXPECT_EQ(reason_phrase(503), "Service Unavailable");
  for (int code : {204, 304, 408, 411, 414, 429, 505}) {
    EXPECT_NE(reason_phrase(code), "Unknown") << code;
  }
  EXPECT_EQ(reason_phrase(299), "Unknown");
}

TEST(Response, ExactBytes) {
  EXPECT_EQ(response(200, "text/plain", "hi"),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_EQ(response(201, "application/json", "{}", "X-A: 1\r\nX-B: 2\r\n", true),
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            "X-A: 1\r\nX-B: 2\r\nConnection: close\r\n\r\n{}");
}

TEST(Response, NoContentTypeWhenEmpty) {
  EXPECT_EQ(response(200, "", ""), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

TEST(Response, NoContentLengthOnBodilessStatuses) {
  EXPECT_EQ(
      response(101, "", "", "Upgrade: websocket\r\nConnection: Upgrade\r\n"),
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  EXPECT_EQ(response(204, "", ""), "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST(Response, ParsesAsOneHttpMessage) {
  // Our own answers are well-formed heads by our own parser's standard (it
  // only reads requests, so swap the status line for a request line).
  const std::string r = response(404, "application/json", "{}", "Allow: GET\r\n", true);
  const std::string as_request = "GET / HTTP/1.1" + r.substr(r.find("\r\n"));
  Request req;
  ASSERT_EQ(parse(as_request, req).status, ParseStatus::Complete);
  EXPECT_EQ(req.header("Content-Length"), "2");
  EXPECT_EQ(req.header("Connection"), "close");
  EXPECT_EQ(as_request.substr(req.head_bytes), "{}");
}

struct ErrorBody {
  std::string error;
  std::string message;
};

// Splits an error response into head and body, checks the head, and decodes
// the body with a real JSON parser.
ErrorBody decode_error_response(const std::string& r, int status) {
  const std::size_t head_end = r.find("\r\n\r\n");
  EXPECT_NE(head_end, std::string::npos);
  const std::string head = r.substr(0, head_end + 4);
  const std::string body = r.substr(head_end + 4);
  EXPECT_EQ(head.rfind("HTTP/1.1 " + std::to_string(status) + " ", 0), 0u) << head;
  EXPECT_NE(head.find("\r\nContent-Type: application/json\r\n"), std::string::npos);
  EXPECT_NE(head.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n"),
            std::string::npos);
  EXPECT_NE(head.find("\r\nConnection: close\r\n"), std::string::npos);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(body).get(doc), simdjson::SUCCESS) << body;
  std::string_view error;
  std::string_view message;
  EXPECT_EQ(doc["error"].get(error), simdjson::SUCCESS) << body;
  EXPECT_EQ(doc["message"].get(message), simdjson::SUCCESS) << body;
  return {std::string(error), std::string(message)};
}

TEST(ErrorResponse, ShapeAndHeaders) {
  const std::string r = error_response(404, "NOT_FOUND", "no such resource");
  EXPECT_EQ(r.substr(r.find("\r\n\r\n") + 4),
            R"({"error":"NOT_FOUND","message":"no such resource"})");
  const ErrorBody b = decode_error_response(r, 404);
  EXPECT_EQ(b.error, "NOT_FOUND");
  EXPECT_EQ(b.message, "no such resource");
}

TEST(ErrorResponse, EscapesQuoteAndBackslash) {
  const std::string message = R"(a "quoted" \ back\slash)";
  const std::string r = error_response(400, "BAD_REQUEST", message);
  EXPECT_NE(r.find(R"("a \"quoted\" \\ back\\slash")"), std::string::npos) << r;
  EXPECT_EQ(decode_error_response(r, 400).message, message);
}

TEST(ErrorResponse, EscapesControlCharacters) {
  const std::string message = std::string("line1\nline2\t\x01") + '\0';
  const std::string r = error_response(400, "BAD_REQUEST", message);
  EXPECT_NE(r.find(R"(line1\u000aline2\u0009\u0001\u0000)"), std::string::npos) << r;
  EXPECT_EQ(decode_error_response(r, 400).message, message);
}

TEST(ErrorResponse, KeepsUtf8AndReplacesInvalidBytes) {
  const std::string r = error_response(400, "BAD_REQUEST", "caf\xC3\xA9 \xFF\xC3 \xED\xA0\x80");
  EXPECT_EQ(decode_error_response(r, 400).message,
            "caf\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(ErrorResponse, ExtraHeaders) {
  const std::string r = error_response(405, "METHOD_NOT_ALLOWED", "no", "Allow: GET\r\n");
  EXPECT_NE(r.find("\r\nAllow: GET\r\n"), std::string::npos);
  EXPECT_EQ(decode_error_response(r, 405).error, "METHOD_NOT_ALLOWED");
}

// ---- UTF-8 sequences (shared helper)

TEST(Utf8SequenceBytes, WellFormedAndNot) {
  EXPECT_EQ(detail::utf8_sequence_bytes(""), 0u);
  EXPECT_EQ(detail::utf8_sequence_bytes("a"), 1u);
  EXPECT_EQ(detail::utf8_sequence_bytes("\xC3\xA9"), 2u);
  EXPECT_EQ(detail::utf8_sequence_bytes("\xE2\x82\xAC"), 3u);
  EXPECT_EQ(detail::utf8_sequence_bytes("\xF0\x9F\x91\x8D"), 4u);
  EXPECT_EQ(detail::utf8_sequence_bytes("\xF4\x8F\xBF\xBF"), 4u);  // U+10FFFF
  EXPECT_EQ(detail::utf8_sequence_bytes("\xC0\xAF"), 0u);          // overlong
  EXPECT_EQ(detail::utf8_sequence_bytes("\xE0\x80\xAF"), 0u);      // overlong
  EXPECT_EQ(detail::utf8_sequence_bytes("\xED\xA0\x80"), 0u);      // surrogate
  EXPECT_EQ(detail::utf8_sequence_bytes("\xF4\x90\x80\x80"), 0u);  // over U+10FFFF
  EXPECT_EQ(detail::utf8_sequence_bytes("\x80"), 0u);              // continuation
  EXPECT_EQ(detail::utf8_sequence_bytes("\xE2\x82"), 0u);          // truncated
  EXPECT_EQ(detail::utf8_sequence_bytes("\xE2\x82\x41"), 0u);      // bad continuation
}

}  // namespace
}  // namespace rc::http
