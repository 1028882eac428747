#include "protocol/http.h"

#include <algorithm>
#include <cstring>

#include "core/assert.h"

namespace rc::http {
namespace {

// Byte classes from RFC 9110: tchar (section 5.6.2) for methods and header
// names; field-vchar, SP, HTAB and obs-text (section 5.5) for header values;
// visible ASCII for request targets (RFC 3986 characters; non-ASCII bytes in a
// target are a client bug we refuse instead of guessing an encoding).
enum : std::uint8_t { kToken = 1, kFieldValue = 2, kTargetChar = 4 };

constexpr std::array<std::uint8_t, 256> make_byte_classes() {
  std::array<std::uint8_t, 256> classes{};
  constexpr std::string_view token_punctuation = "!#$%&'*+-.^_`|~";
  for (int c = 0; c < 256; ++c) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    std::uint8_t bits = 0;
    if (alnum || token_punctuation.find(static_cast<char>(c)) != std::string_view::npos) {
      bits |= kToken;
    }
    if (c == '\t' || (c >= 0x20 && c != 0x7f)) bits |= kFieldValue;
    if (c > 0x20 && c < 0x7f) bits |= kTargetChar;
    classes[static_cast<std::size_t>(c)] = bits;
  }
  return classes;
}

constexpr std::array<std::uint8_t, 256> kByteClasses = make_byte_classes();

bool all_in_class(std::string_view s, std::uint8_t byte_class) {
  for (const char c : s) {
    if ((kByteClasses[static_cast<unsigned char>(c)] & byte_class) == 0) return false;
  }
  return true;
}

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

constexpr ParseResult bad_request(std::string_view message) {
  return {ParseStatus::Error, 400, "BAD_REQUEST", message};
}

constexpr ParseResult too_large(std::string_view message) {
  return {ParseStatus::Error, 431, "HEADERS_TOO_LARGE", message};
}

constexpr ParseResult kLineOk{ParseStatus::Incomplete, 0, {}, {}};

Method method_from_text(std::string_view m) {
  if (m == "GET") return Method::Get;
  if (m == "HEAD") return Method::Head;
  if (m == "POST") return Method::Post;
  if (m == "PUT") return Method::Put;
  if (m == "DELETE") return Method::Delete;
  if (m == "OPTIONS") return Method::Options;
  if (m == "PATCH") return Method::Patch;
  return Method::Other;
}

// request-line = method SP request-target SP HTTP-version (RFC 9112 3), with
// exactly one space between the parts: lenient splitting on runs of
// whitespace is how request smuggling between proxies starts.
ParseResult parse_request_line(std::string_view line, Request& out) {
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return bad_request("malformed request line");
  const std::string_view method = line.substr(0, sp1);
  const std::string_view rest = line.substr(sp1 + 1);
  const std::size_t sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) return bad_request("malformed request line");
  const std::string_view target = rest.substr(0, sp2);
  const std::string_view version = rest.substr(sp2 + 1);

  if (method.empty() || !all_in_class(method, kToken)) return bad_request("malformed method");
  if (target.empty() || target.front() != '/') {
    return bad_request("request target must be an absolute path");
  }
  if (!all_in_class(target, kTargetChar)) return bad_request("invalid byte in request target");
  if (version == "HTTP/1.1") {
    out.version_minor = 1;
  } else if (version == "HTTP/1.0") {
    out.version_minor = 0;
  } else {
    return bad_request("unsupported HTTP version (HTTP/1.0 or HTTP/1.1 only)");
  }
  out.method = method_from_text(method);
  out.method_text = method;
  out.target = target;
  const std::size_t q = target.find('?');
  out.path = target.substr(0, q);
  out.query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  return kLineOk;
}

// field-line = field-name ":" OWS field-value OWS (RFC 9112 5). Syntax is
// checked before the header count so that a prefix of the head and the whole
// head report the same error.
ParseResult parse_header_line(std::string_view line, Request& out, bool& seen_content_length) {
  if (line.front() == ' ' || line.front() == '\t') {
    return bad_request("obsolete line folding is not allowed");
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return bad_request("header line without ':'");
  const std::string_view name = line.substr(0, colon);
  if (name.empty() || !all_in_class(name, kToken)) return bad_request("invalid header name");
  const std::string_view raw_value = line.substr(colon + 1);
  if (!all_in_class(raw_value, kFieldValue)) return bad_request("control character in header");
  const std::string_view value = trim_ows(raw_value);

  if (out.header_count == out.headers.size()) return too_large("too many header lines");
  if (detail::ascii_iequals(name, "content-length")) {
    if (seen_content_length) return bad_request("duplicate Content-Length");
    if (!detail::parse_decimal_u64(value, out.content_length)) {
      return bad_request("invalid Content-Length");
    }
    seen_content_length = true;
  } else if (detail::ascii_iequals(name, "transfer-encoding")) {
    return {ParseStatus::Error, 501, "NOT_IMPLEMENTED", "Transfer-Encoding is not supported"};
  }
  out.headers[out.header_count++] = Header{name, value};
  return kLineOk;
}

void reset(Request& out) {
  out.method = Method::Other;
  out.method_text = out.target = out.path = out.query = {};
  out.version_minor = 1;
  out.header_count = 0;
  out.head_bytes = 0;
  out.content_length = 0;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // Copy whole UTF-8 sequences; a stray byte would make the body invalid
      // JSON, so it becomes U+FFFD instead.
      const std::size_t n = detail::utf8_sequence_bytes(s.substr(i));
      if (n == 0) {
        out += "\xEF\xBF\xBD";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  out += '"';
}

}  // namespace

std::string_view Request::header(std::string_view name) const {
  for (std::size_t i = 0; i < header_count; ++i) {
    if (detail::ascii_iequals(headers[i].name, name)) return headers[i].value;
  }
  return {};
}

bool Request::has_header(std::string_view name) const {
  for (std::size_t i = 0; i < header_count; ++i) {
    if (detail::ascii_iequals(headers[i].name, name)) return true;
  }
  return false;
}

// Lines are cut at LF and must end in CR LF. Only the first
// http_head_bytes_max bytes are ever looked at, which bounds both the work
// per call and head_bytes. A partial last line is not examined until its LF
// arrives, which is what keeps the result monotonic as bytes are appended.
ParseResult parse_request(std::string_view bytes, Request& out) {
  reset(out);
  const std::size_t scan_end = std::min(bytes.size(), limits::http_head_bytes_max);
  bool seen_content_length = false;
  std::size_t pos = 0;
  while (true) {
    const void* lf =
        pos < scan_end ? std::memchr(bytes.data() + pos, '\n', scan_end - pos) : nullptr;
    if (lf == nullptr) {
      if (bytes.size() > limits::http_head_bytes_max) return too_large("request head too large");
      return {ParseStatus::Incomplete, 0, {}, {}};
    }
    const auto end = static_cast<std::size_t>(static_cast<const char*>(lf) - bytes.data());
    if (end == pos || bytes[end - 1] != '\r') return bad_request("line not ended by CRLF");
    const std::string_view line = bytes.substr(pos, end - 1 - pos);
    const bool first_line = pos == 0;
    pos = end + 1;
    ParseResult r;
    if (first_line) {
      r = parse_request_line(line, out);
    } else if (line.empty()) {
      out.head_bytes = pos;
      return {ParseStatus::Complete, 0, {}, {}};
    } else {
      r = parse_header_line(line, out, seen_content_length);
    }
    if (r.status == ParseStatus::Error) return r;
  }
}

bool header_has_token(std::string_view value, std::string_view token) {
  while (true) {
    const std::size_t comma = value.find(',');
    if (detail::ascii_iequals(trim_ows(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) return false;
    value.remove_prefix(comma + 1);
  }
}

bool form_decode(std::string_view in, std::string& out) {
  const std::size_t original_size = out.size();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c != '%') {
      out += c;
    } else {
      const auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      const int hi = i + 1 < in.size() ? hex(in[i + 1]) : -1;
      const int lo = i + 2 < in.size() ? hex(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        out.resize(original_size);
        return false;
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return true;
}

std::string_view reason_phrase(int status) {
  struct Phrase {
    int status;
    std::string_view text;
  };
  static constexpr Phrase kPhrases[] = {
      {101, "Switching Protocols"},
      {200, "OK"},
      {201, "Created"},
      {204, "No Content"},
      {304, "Not Modified"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {411, "Length Required"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {426, "Upgrade Required"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {503, "Service Unavailable"},
      {505, "HTTP Version Not Supported"},
  };
  for (const Phrase& p : kPhrases) {
    if (p.status == status) return p.text;
  }
  return "Unknown";
}

// 1xx, 204 and 304 answers have no body, and RFC 9110 forbids (or gives
// another meaning to) Content-Length on them, so it is left out there.
std::string response(int status, std::string_view content_type, std::string_view body,
                     std::string_view extra_headers, bool close) {
  RC_ASSERT(status >= 100 && status <= 999);
  RC_ASSERT(extra_headers.empty() || extra_headers.ends_with("\r\n"));
  const bool bodiless = status < 200 || status == 204 || status == 304;
  RC_ASSERT(!bodiless || body.empty());
  std::string r;
  r.reserve(128 + content_type.size() + extra_headers.size() + body.size());
  r += "HTTP/1.1 ";
  r += std::to_string(status);
  r += ' ';
  r += reason_phrase(status);
  r += "\r\n";
  if (!content_type.empty()) {
    r += "Content-Type: ";
    r += content_type;
    r += "\r\n";
  }
  if (!bodiless) {
    r += "Content-Length: ";
    r += std::to_string(body.size());
    r += "\r\n";
  }
  r += extra_headers;
  if (close) r += "Connection: close\r\n";
  r += "\r\n";
  r += body;
  return r;
}

std::string error_response(int status, std::string_view code, std::string_view message,
                           std::string_view extra_headers) {
  std::string body;
  body.reserve(32 + code.size() + message.size());
  body += "{\"error\":";
  append_json_string(body, code);
  body += ",\"message\":";
  append_json_string(body, message);
  body += '}';
  return response(status, "application/json", body, extra_headers, /*close=*/true);
}

namespace detail {

bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

bool parse_decimal_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  std::uint64_t value = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

// The table of well-formed sequences in the Unicode standard (Table 3-7):
// the lead byte fixes the length and the allowed range of the second byte,
// which is where overlongs, surrogates and values over U+10FFFF are refused.
std::size_t utf8_sequence_bytes(std::string_view s) {
  if (s.empty()) return 0;
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  const auto b1 = static_cast<unsigned char>(s[1]);
  if (b1 < lo || b1 > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if ((static_cast<unsigned char>(s[k]) & 0xC0) != 0x80) return 0;
  }
  return n;
}

}  // namespace detail
}  // namespace rc::http
