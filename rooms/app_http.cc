// The HTTP side of a shard's App: request heads parsed in place, answers for
// /healthz and /metrics, the checks of PROTOCOL section 1 in their order, and
// the upgrade of /ws/rooms/{room} (authenticated here, answered by the shard
// that owns the room).

#include <fmt/format.h>

#include "core/log.h"
#include "protocol/json_writer.h"
#include "protocol/outbound.h"
#include "protocol/route.h"
#include "rooms/app.h"
#include "rooms/web_assets.h"

namespace rc::rooms {
namespace {

// Index into kHttpErrorClasses.
std::size_t http_error_slot(int status) {
  switch (status) {
    case 400:
      return 0;
    case 401:
    case 403:
      return 1;
    case 404:
    case 405:
      return 2;
    case 426:
      return 3;
    case 431:
      return 4;
    default:
      return 5;
  }
}

bool wants_close(const http::Request& req) {
  if (req.version_minor == 0)
    return !http::header_has_token(req.header("connection"), "keep-alive");
  return http::header_has_token(req.header("connection"), "close");
}

}  // namespace

void App::reject(Session& s, int status, std::string_view code, std::string_view message) {
  stats_.http_errors[http_error_slot(status)].add();
  answer(s, http::error_response(status, code, message), true);
}

void App::answer(Session& s, const std::string& response, bool close) {
  if (s.head_request) {
    // HEAD gets the same head, Content-Length included, and no body.
    const std::size_t head_end = response.find("\r\n\r\n");
    RC_ASSERT(head_end != std::string::npos);
    shard_.send(s.id, out::bytes(std::string_view(response).substr(0, head_end + 4)));
  } else {
    shard_.send(s.id, out::bytes(response));
  }
  s.answered = true;
  if (close) end_session(s);
}

std::size_t App::on_http(Session& s, std::uint8_t* data, std::size_t len) {
  http::Request req;
  std::string_view bytes(reinterpret_cast<const char*>(data), len);
  http::ParseResult pr = http::parse_request(bytes, req);
  if (pr.status == http::ParseStatus::Incomplete) return 0;
  stats_.http_requests_total.add();
  s.head_request = pr.status == http::ParseStatus::Complete && req.method == http::Method::Head;
  if (pr.status == http::ParseStatus::Error) {
    reject(s, pr.http_status, pr.error_code, pr.message);
    return len;
  }
  if (req.content_length > limits::http_body_bytes_max) {
    reject(s, 413, "BODY_TOO_LARGE", "request body over 16 KiB");
    return len;
  }
  const std::size_t request_bytes = req.head_bytes + req.content_length;
  if (len < request_bytes) return 0;  // wait for the whole body

  http::RouteOptions opts{ctx_.config.allowed_origins};
  http::Routed routed = http::route(req, opts, asset_names());
  // While shutting down, nothing keeps a connection open after its answer.
  const bool close = wants_close(req) || shutting_down_;
  switch (routed.route) {
    case http::Route::Error:
      stats_.http_errors[http_error_slot(routed.status)].add();
      answer(s, http::error_response(routed), true);
      return len;
    case http::Route::Healthz:
      if (ctx_.group.shutting_down()) {
        answer(s, http::error_response(503, "SHUTTING_DOWN", "the server is shutting down"), true);
        return len;
      }
      answer(s, http::response(200, "application/json", healthz(), {}, close), close);
      return close ? len : request_bytes;
    case http::Route::Metrics:
      answer(s,
             http::response(200, "text/plain; version=0.0.4; charset=utf-8", metrics(), {}, close),
             close);
      return close ? len : request_bytes;
    case http::Route::Tickets:
      on_ticket_request(s, req);
      return len;
    case http::Route::Static: {
      const Asset* asset = find_asset(routed.asset);
      if (asset == nullptr) {  // "/" in a build whose web/ has no index.html
        answer(s, http::error_response(404, "NOT_FOUND", "no such asset"), true);
        return len;
      }
      answer(s,
             http::response(200, asset->content_type, asset->body, "Cache-Control: no-cache\r\n",
                            close),
             close);
      return close ? len : request_bytes;
    }
    case http::Route::Room:
      return on_room_request(s, req, routed.room);
  }
  return len;
}

void App::accept_upgrade(Session& s, UpgradeHandoff& h) {
  std::string head = fmt::format(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: {}\r\n\r\n",
      h.accept_key);
  shard_.send(s.id, out::bytes(head));
  shard_.set_streaming(s.id);
  s.phase = Session::Phase::kOpen;
  s.reader.emplace(ctx_.config.max_message_bytes, limits::read_padding_bytes);
  s.who = std::move(h.who);
  s.has_since = h.has_since;
  s.since = h.since;
  s.session_id = random_.token(10);  // 14 characters: kept inline in the string
  s.last_ping_ms = shard_.now_ms();
  shard_.stats().sessions.add();
  enter_room(s, std::move(h.room));
}

std::string App::healthz() const {
  std::uint64_t sessions = 0, rooms = 0;
  for (std::uint32_t i = 0; i < ctx_.group.size(); ++i) {
    sessions += ctx_.group.stats(i).sessions.get();
    rooms += ctx_.group.stats(i).rooms.get();
  }
  std::string body;
  json::Writer w(body);
  w.begin_object()
      .field("status", "ok")
      .field("threads", static_cast<std::uint64_t>(ctx_.group.size()))
      .field("connections", sessions)
      .field("rooms", rooms)
      .end_object();
  return body;
}

}  // namespace rc::rooms
