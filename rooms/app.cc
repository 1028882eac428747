#include "rooms/app.h"

#include <algorithm>

#include "core/log.h"
#include "protocol/outbound.h"

namespace rc::rooms {

App::App(Context& ctx, Shard& shard)
    : ctx_(ctx),
      shard_(shard),
      stats_(ctx.stats[shard.index()]),
      decoder_(ctx.config.max_message_bytes),
      tickets_(shard.index()) {
  room_rules_.leave_grace_ms = std::int64_t{ctx.config.leave_grace_s} * 1000;
  room_rules_.idle_after_ms = std::int64_t{ctx.config.idle_after_s} * 1000;
  room_rules_.away_after_ms = std::int64_t{ctx.config.away_after_s} * 1000;
  room_rules_.chat_refill_ms = kChatBurstSeconds * 1000;
  decode_limits_.chat_chars_max = ctx.config.max_chat_chars;
  scratch_.reserve(4096);
}

App::~App() {
  // Sessions go first: they point into rooms.
  for (Session* s : sessions_) delete s;
  sessions_.clear();
}

Session* App::add_session(ConnId id) {
  auto* s = new Session();
  s->id = id;
  s->index = static_cast<std::uint32_t>(sessions_.size());
  s->created_ms = shard_.now_ms();
  s->last_rx_ms = s->created_ms;
  sessions_.push_back(s);
  shard_.set_app_data(id, s);
  return s;
}

void App::remove_session(Session* s) {
  RC_ASSERT(s->index < sessions_.size() && sessions_[s->index] == s);
  leave_room(*s);
  Session* last = sessions_.back();
  sessions_[s->index] = last;
  last->index = s->index;
  sessions_.pop_back();
  shard_.set_app_data(s->id, nullptr);
  if (s->phase != Session::Phase::kHttp) shard_.stats().sessions.sub();
  delete s;
}

Session* App::find(ConnId id) {
  return static_cast<Session*>(shard_.app_data(id));
}

void App::on_open(ConnId id) {
  add_session(id);
}

std::size_t App::on_data(ConnId id, std::uint8_t* data, std::size_t len) {
  Session* s = find(id);
  RC_ASSERT(s != nullptr);
  s->last_rx_ms = shard_.now_ms();
  if (s->phase == Session::Phase::kHttp) return on_http(*s, data, len);
  return on_ws(*s, data, len);
}

void App::on_closed(ConnId id, CloseReason why) {
  Session* s = find(id);
  if (s == nullptr) return;
  RC_DEBUG("connection {} gone ({})", id, static_cast<int>(why));
  remove_session(s);
}

void App::on_adopt(ConnId id, void* payload) {
  std::unique_ptr<UpgradeHandoff> h(static_cast<UpgradeHandoff*>(payload));
  if (id == 0) return;  // the shard could not take the connection
  Session* s = add_session(id);
  if (h->redeem) {
    redeem_ticket(*s, std::move(h));
  } else {
    accept_upgrade(*s, *h);
  }
}

void App::on_sweep(std::int64_t now) {
  sweep_rooms();
  tickets_.sweep(now);
  const std::int64_t timeout_ms = std::int64_t{ctx_.config.session_timeout_s} * 1000;
  const std::int64_t ping_ms = std::min<std::int64_t>(30000, timeout_ms / 3);
  // Iterate over a copy of the pointers: closing a session removes it.
  std::vector<Session*> all(sessions_);
  for (Session* s : all) {
    switch (s->phase) {
      case Session::Phase::kHttp:
        if (now - s->created_ms >= (shutting_down_ ? kShutdownHeadTimeoutMs : kHttpHeadTimeoutMs)) {
          end_session(*s);
        }
        break;
      case Session::Phase::kOpen:
        if (now - s->last_rx_ms >= timeout_ms) {
          close_session(*s, ws::close_code::kGoingAway, "session timeout", false);
        } else if (now - s->last_rx_ms >= ping_ms && now - s->last_ping_ms >= ping_ms) {
          s->last_ping_ms = now;
          shard_.send(s->id, out::frame(ws::kPing, {}));
        }
        break;
      case Session::Phase::kCloseSent:
        if (now >= s->close_deadline_ms) end_session(*s);
        break;
    }
  }
}

void App::on_shutdown(std::int64_t) {
  // Chat already handed to the log is committed and broadcast first
  // (PROTOCOL 6); later chat gets SHUTTING_DOWN.
  shutting_down_ = true;
  if (appends_in_flight_ == 0) close_all_for_shutdown();
}

void App::end_session(Session& s) {
  shard_.close(s.id);
  remove_session(&s);
}

void App::count_close(std::uint16_t code) {
  for (std::size_t i = 0; i < kCountedCloseCodes.size(); ++i) {
    if (kCountedCloseCodes[i] == code) stats_.closes_sent[i].add();
  }
}

void App::count_error(std::string_view code) {
  for (std::size_t i = 0; i < kCountedErrorCodes.size(); ++i) {
    if (kCountedErrorCodes[i] == code) stats_.errors_sent[i].add();
  }
}

}  // namespace rc::rooms
