#pragma once
// HTTP/1.1 request heads, parsed in place, and the answers rollcall sends
// before a connection becomes a WebSocket session (PROTOCOL.md section 1).
//
// Contract of the parser:
// - Pure and allocation-free: it reads `bytes` and fills a caller-owned
//   Request whose string_views point into `bytes`. The views stay valid as
//   long as the caller keeps those bytes where they are.
// - Any thread may call it; it keeps no state between calls. To feed a head
//   that arrives in pieces, call it again on all the bytes received so far
//   (the head is at most limits::http_head_bytes_max bytes, so the rescan
//   is bounded).
// - Monotonic: if a prefix of some bytes parses as Complete or Error, the
//   whole bytes parse the same way (same head_bytes, same status). Errors in
//   lines already received are reported at once, without waiting for the
//   rest of the head.
// - Strict framing: every line must end in CRLF. A bare LF or a bare CR is
//   a 400, as are obs-fold continuation lines and control characters.
// - Only origin-form targets ("/path?query") are accepted; the path is not
//   percent-decoded. A Host header is not required (one site per port).
// - Request bodies: Content-Length (one, plain decimal) is reported in
//   content_length; the body itself starts at head_bytes and is the caller's.
//   Transfer-Encoding (chunked bodies) is not supported and answers
//   501 NOT_IMPLEMENTED, so a body is never misframed.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/limits.h"

namespace rc::http {

enum class Method : std::uint8_t { Get, Head, Post, Put, Delete, Options, Patch, Other };

// One header line. Both views point into the parsed bytes; the value has its
// leading and trailing optional whitespace (SP, HTAB) removed.
struct Header {
  std::string_view name;
  std::string_view value;
};

struct Request {
  Method method = Method::Other;
  std::string_view method_text;  // as sent; methods are case-sensitive ("get" is Other)
  std::string_view target;       // path[?query], exactly as sent
  std::string_view path;         // target up to the first '?'
  std::string_view query;        // after the first '?', without it; empty if none
  int version_minor = 1;         // 0 or 1: HTTP/1.0 or HTTP/1.1
  std::array<Header, limits::http_headers_max> headers;  // the first header_count are set
  std::size_t header_count = 0;
  std::size_t head_bytes = 0;        // bytes of the head including the final CRLF CRLF
  std::uint64_t content_length = 0;  // 0 when absent

  // The value of the first header with this name (ASCII case-insensitive);
  // an empty view if there is none (see has_header to tell "" from absent).
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

enum class ParseStatus : std::uint8_t { Complete, Incomplete, Error };

// On Error: http_status is the answer to send (400, 431 or 501), error_code
// the PROTOCOL error code ("BAD_REQUEST", "HEADERS_TOO_LARGE",
// "NOT_IMPLEMENTED") and message a short English explanation. Both views
// point to static storage. On Complete and Incomplete they are empty/0.
struct ParseResult {
  ParseStatus status = ParseStatus::Incomplete;
  int http_status = 0;
  std::string_view error_code;
  std::string_view message;
};

// Parses the request head at the start of `bytes`.
// Complete: `out` is filled; out.head_bytes bytes were consumed (what follows
//   is a body or a pipelined request, left to the caller).
// Incomplete: no complete head yet and bytes.size() <= http_head_bytes_max;
//   call again with more bytes. `out` is unspecified.
// Error 431 HEADERS_TOO_LARGE: the head does not end within the first
//   http_head_bytes_max bytes (head_bytes may be at most that limit), or it
//   has more than http_headers_max header lines.
// Error 400 BAD_REQUEST: malformed request line (method not a token, target
//   not origin-form or with bytes outside 0x21-0x7E, separators other than
//   single spaces), version other than HTTP/1.0 or HTTP/1.1, a header name
//   that is empty or not a token (so whitespace before ':' too), a header
//   line without ':', control characters in a value, a bare CR or bare LF,
//   obs-fold, an invalid or duplicate Content-Length.
// Error 501 NOT_IMPLEMENTED: a Transfer-Encoding header.
ParseResult parse_request(std::string_view bytes, Request& out);

// True if the comma-separated header value contains `token`, compared ASCII
// case-insensitively after trimming SP/HTAB around each element
// ("keep-alive, Upgrade" contains "upgrade").
bool header_has_token(std::string_view value, std::string_view token);

// application/x-www-form-urlencoded decoding of one key or value: "%XX" (hex
// digits of either case) becomes that byte and '+' a space; other bytes are
// copied. Appends to `out`. Returns false on a malformed escape ('%' not
// followed by two hex digits), leaving `out` as it was. Decoded bytes are not
// checked (the result may be any bytes, NUL included).
bool form_decode(std::string_view in, std::string& out);

// Calls f(raw_key, raw_value) for each '&'-separated pair of the query, in
// order. Empty pairs are skipped; a pair without '=' gives an empty value; the
// value runs from the first '=' to the end of the pair. Keys and values are
// NOT decoded (see form_decode).
template <typename F>
void for_each_query_param(std::string_view query, F&& f) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      f(pair, std::string_view());
    } else {
      f(pair.substr(0, eq), pair.substr(eq + 1));
    }
  }
}

// The reason phrase of a status code: every code rollcall sends (101, 200,
// 201, 204, 304, 400, 401, 403, 404, 405, 408, 411, 413, 414, 426, 429, 431,
// 500, 501, 503, 505) has its RFC 9110 phrase; any other code gives "Unknown".
std::string_view reason_phrase(int status);

// A whole HTTP/1.1 response: the status line, "Content-Type" (left out when
// content_type is empty), "Content-Length", the extra header lines (each must
// end in "\r\n"; asserted), "Connection: close" when `close` is true, the
// blank line and the body. Allocates the returned string (not a hot path:
// error answers and small documents).
std::string response(int status, std::string_view content_type, std::string_view body,
                     std::string_view extra_headers = {}, bool close = false);

// The error answer of PROTOCOL section 1: JSON body
// {"error":"<code>","message":"<message>"} (JSON-escaped; bytes that are not
// valid UTF-8 become U+FFFD so the body is always valid JSON),
// Content-Type application/json, Connection: close.
std::string error_response(int status, std::string_view code, std::string_view message,
                           std::string_view extra_headers = {});

// Small helpers shared by http.cc and route.cc; not part of the contract.
namespace detail {
// Length in bytes (1-4) of the well-formed UTF-8 sequence at the start of s
// (no overlongs, no surrogates, at most U+10FFFF), or 0 if s is empty or does
// not start with one.
std::size_t utf8_sequence_bytes(std::string_view s);
// Parses a non-empty string of ASCII digits (no sign, no spaces) that fits in
// 64 bits into `out`; false (and `out` untouched) otherwise.
bool parse_decimal_u64(std::string_view s, std::uint64_t& out);
// ASCII case-insensitive equality (header names).
bool ascii_iequals(std::string_view a, std::string_view b);
}  // namespace detail

}  // namespace rc::http
