// The WebSocket side of a shard's App: frames decoded in place, messages
// decoded straight from the receive buffer, the close handshake.

#include <fmt/format.h>

#include <cstring>

#include "core/log.h"
#include "protocol/outbound.h"
#include "rooms/app.h"

namespace rc::rooms {

// Reader events for one feed() call. Ending the session is deferred until
// feed() returns: the reader lives inside the session.
struct App::Sink {
  App& app;
  Session& s;
  bool end = false;
  void on_text(std::uint8_t* data, std::size_t len) {
    if (!end) app.on_text(s, data, len);
  }
  void on_ping(std::string_view payload) {
    app.stats_.control_frames_in_total.add();
    app.shard_.send(s.id, out::frame(ws::kPong, payload));
  }
  void on_pong(std::string_view) { app.stats_.control_frames_in_total.add(); }
  void on_close(std::uint16_t code, std::string_view) {
    app.stats_.control_frames_in_total.add();
    end = true;
    // The reply to our close frame completes the handshake.
    if (s.phase == Session::Phase::kCloseSent) return;
    // The client closed first: echo its code (RFC 6455 5.5.1). Its member
    // leaves at once, without the reconnect grace.
    s.client_closed = true;
    if (code == ws::close_code::kNoStatus) {
      app.count_close(ws::close_code::kNormal);
      app.shard_.send(s.id, out::frame(ws::kClose, {}));
    } else {
      app.count_close(code);
      app.shard_.send(s.id, out::close(code, {}));
    }
  }
  void on_error(std::uint16_t code, std::string_view reason) {
    end = true;
    if (code == ws::close_code::kTooBig) {
      app.send_error(s, out::code::kTooLarge,
                     fmt::format("message over {} bytes", app.ctx_.config.max_message_bytes));
    }
    app.count_close(code);
    app.shard_.send(s.id, out::close(code, reason));
  }
};

std::size_t App::on_ws(Session& s, std::uint8_t* data, std::size_t len) {
  Sink sink{*this, s};
  std::size_t used = s.reader->feed(data, len, sink);
  stats_.frames_in_total.add(s.reader->frames_last_feed());
  if (sink.end) {
    end_session(s);
    return len;
  }
  return used;
}

void App::on_text(Session& s, std::uint8_t* data, std::size_t len) {
  stats_.messages_in_total.add();
  if (s.phase != Session::Phase::kOpen) return;  // waiting for the close reply
  // The welcome is the first message of a session (PROTOCOL 3.1): what comes
  // while it waits for the room's chat state is held, in order, until then.
  if (s.early || (s.entry != nullptr && !s.queued && !s.welcomed)) {
    hold_early(s, data, len);
    return;
  }
  handle_text(s, data, len);
}

void App::hold_early(Session& s, const std::uint8_t* data, std::size_t len) {
  if (!s.early) s.early = std::make_unique<EarlyMessages>();
  if (s.early->held.size() >= limits::early_messages_max) {
    ++s.early->dropped;  // told after the welcome
    return;
  }
  // The message, then the zero padding the JSON decoder may read.
  std::string copy(len + limits::read_padding_bytes, '\0');
  std::memcpy(copy.data(), data, len);
  s.early->held.push_back(std::move(copy));
}

void App::release_early(Session& s) {
  if (s.early) early_due_.push_back(s.id);
}

void App::handle_text(Session& s, std::uint8_t* data, std::size_t len) {
  msg::ClientMessage m;
  json::DecodeError err;
  if (!decoder_.decode(data, len, decode_limits_, m, err)) {
    send_error(s, out::code::kBadRequest, err.message, err.ref);
    return;
  }
  if (m.type == msg::Type::kPing) {
    scratch_.clear();
    out::pong_json(scratch_, wall_ms());
    send_json(s, scratch_);
    return;
  }
  if (s.entry == nullptr) return;  // refused, closing
  if (!s.welcomed) {               // queued (messages before a welcome are held: on_text)
    on_queued_message(s, m);
    return;
  }
  on_room_message(s, m);
}

void App::send_json(Session& s, std::string_view json) { shard_.send(s.id, out::text(json)); }

void App::send_error(Session& s, std::string_view code, std::string_view message,
                     std::string_view ref) {
  count_error(code);
  std::string body;
  out::error_json(body, code, message, ref);
  send_json(s, body);
}

void App::close_session(Session& s, std::uint16_t code, std::string_view reason, bool await_reply) {
  count_close(code);
  shard_.send(s.id, out::close(code, reason));
  // Nothing may follow a close frame (RFC 6455 5.5.1): the session leaves its
  // room now (a close the server starts: the reconnect grace applies).
  leave_room(s);
  if (!await_reply || s.reader->failed() || s.reader->closed()) {
    end_session(s);
    return;
  }
  s.phase = Session::Phase::kCloseSent;
  s.close_deadline_ms = shard_.now_ms() + kCloseReplyTimeoutMs;
}

}  // namespace rc::rooms
