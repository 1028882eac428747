// libFuzzer target for the HTTP head parser, the router and the upgrade query
// decoder. Besides "no crash, no sanitizer report" it checks the parser's
// contract: views inside the input, head_bytes bounded and ending in CRLF
// CRLF, the same answer for any prefix that already decides it, and error
// answers that are whole HTTP messages.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/assert.h"
#include "core/limits.h"
#include "protocol/http.h"
#include "protocol/route.h"

namespace {

using rc::http::ParseResult;
using rc::http::ParseStatus;
using rc::http::Request;

constexpr std::array<std::string_view, 3> kAssets = {"index.html", "app.js", "rollcall.js"};

bool inside(std::string_view view, std::string_view whole) {
  return view.empty() ||
         (view.data() >= whole.data() && view.data() + view.size() <= whole.data() + whole.size());
}

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

void check_complete(const Request& req, std::string_view bytes) {
  RC_ASSERT(req.head_bytes >= 4 && req.head_bytes <= bytes.size());
  RC_ASSERT(req.head_bytes <= rc::limits::http_head_bytes_max);
  RC_ASSERT(bytes.substr(req.head_bytes - 4, 4) == "\r\n\r\n");
  const std::string_view head = bytes.substr(0, req.head_bytes);
  RC_ASSERT(inside(req.method_text, head) && inside(req.target, head));
  RC_ASSERT(!req.method_text.empty() && !req.target.empty() && req.target.front() == '/');
  RC_ASSERT(req.path.size() + (req.query.empty() ? 0 : req.query.size() + 1) <= req.target.size());
  RC_ASSERT(req.version_minor == 0 || req.version_minor == 1);
  RC_ASSERT(req.header_count <= rc::limits::http_headers_max);
  for (std::size_t i = 0; i < req.header_count; ++i) {
    const rc::http::Header& h = req.headers[i];
    RC_ASSERT(!h.name.empty() && inside(h.name, head) && inside(h.value, head));
    RC_ASSERT(h.value.empty() || (!is_ows(h.value.front()) && !is_ows(h.value.back())));
    RC_ASSERT(req.has_header(h.name));
  }
  // One byte less is never a complete head.
  Request shorter;
  RC_ASSERT(rc::http::parse_request(head.substr(0, head.size() - 1), shorter).status !=
            ParseStatus::Complete);
}

// A prefix that is already Complete or Error decides the answer for the whole.
void check_prefix_agrees(std::string_view bytes, const ParseResult& whole, const Request& req) {
  const std::size_t cut = bytes.empty() ? 0 : static_cast<unsigned char>(bytes[0]) % bytes.size();
  Request prefix_req;
  const ParseResult prefix = rc::http::parse_request(bytes.substr(0, cut), prefix_req);
  if (prefix.status == ParseStatus::Incomplete) return;
  RC_ASSERT(prefix.status == whole.status);
  RC_ASSERT(prefix.http_status == whole.http_status);
  if (whole.status == ParseStatus::Complete) RC_ASSERT(prefix_req.head_bytes == req.head_bytes);
}

void check_error_answer(int status, std::string_view code, const std::string& answer) {
  RC_ASSERT(answer.starts_with("HTTP/1.1 " + std::to_string(status) + " "));
  RC_ASSERT(answer.find("\r\nConnection: close\r\n") != std::string::npos);
  RC_ASSERT(answer.find("\"error\":\"" + std::string(code) + "\"") != std::string::npos);
}

void exercise_routing(const Request& req) {
  const std::array<std::string, 2> origins = {"https://school.example", "null"};
  for (const rc::http::RouteOptions opts :
       {rc::http::RouteOptions{}, rc::http::RouteOptions{origins}}) {
    const rc::http::Routed r = rc::http::route(req, opts, kAssets);
    if (r.route == rc::http::Route::Error) {
      RC_ASSERT(r.status >= 400 && r.status < 500 && !r.code.empty());
      RC_ASSERT((r.status == 405) == !r.allow.empty());
      check_error_answer(r.status, r.code, rc::http::error_response(r));
    } else if (r.route == rc::http::Route::Room) {
      RC_ASSERT(rc::http::valid_room_id(r.room) && req.method == rc::http::Method::Get);
    } else if (r.route == rc::http::Route::Static) {
      RC_ASSERT(!r.asset.empty());
    }
  }
  const auto q = rc::http::parse_upgrade_query(req.query);
  if (q.is_ok()) {
    RC_ASSERT(!q.value().has_user_id || rc::http::valid_user_id(q.value().user_id));
    RC_ASSERT(!q.value().has_name || rc::http::valid_name(q.value().name));
  } else {
    RC_ASSERT(!q.status().message().empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Request req;
  const ParseResult result = rc::http::parse_request(bytes, req);
  check_prefix_agrees(bytes, result, req);
  switch (result.status) {
    case ParseStatus::Incomplete:
      RC_ASSERT(size <= rc::limits::http_head_bytes_max);
      break;
    case ParseStatus::Error:
      RC_ASSERT(result.http_status == 400 || result.http_status == 431 ||
                result.http_status == 501);
      check_error_answer(
          result.http_status, result.error_code,
          rc::http::error_response(result.http_status, result.error_code, result.message));
      break;
    case ParseStatus::Complete:
      check_complete(req, bytes);
      exercise_routing(req);
      break;
  }
  // The decoders on raw input too (they take any bytes).
  std::string decoded;
  rc::http::form_decode(bytes.substr(0, 256), decoded);
  RC_ASSERT(decoded.size() <= 256);
  rc::http::header_has_token(bytes.substr(0, 256), "upgrade");
  return 0;
}
