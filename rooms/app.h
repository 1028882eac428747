#pragma once
// The rooms layer's side of a shard: it turns connections into HTTP answers
// and WebSocket sessions. One App per shard, created and used on that shard's
// thread only.
//
// HTTP (app_http.cc): the request head is parsed in place; /healthz,
// /metrics and errors are answered on the accepting shard; an upgrade on
// /ws/rooms/{room} is authenticated there and then handed, with its unread
// bytes, to the shard that owns the room, which answers 101.
// WebSocket (app_ws.cc): frames are decoded in place, messages are decoded
// straight from the receive buffer, and the close handshake and timeouts of
// PROTOCOL sections 3 and 6 are kept.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/crypto.h"
#include "core/shard.h"
#include "protocol/http.h"
#include "protocol/json_decode.h"
#include "rooms/context.h"
#include "rooms/room_entry.h"
#include "rooms/session.h"

#include <memory>
#include <unordered_map>

namespace rc::rooms {

// How long a client may take to send a whole request head.
inline constexpr std::int64_t kHttpHeadTimeoutMs = 10000;
// How long the server waits for the client's close frame after sending its own.
inline constexpr std::int64_t kCloseReplyTimeoutMs = 2000;

class App final : public ShardApp {
 public:
  App(Context& ctx, Shard& shard);
  ~App() override;

  void on_open(ConnId id) override;
  std::size_t on_data(ConnId id, std::uint8_t* data, std::size_t len) override;
  void on_closed(ConnId id, CloseReason why) override;
  void on_adopt(ConnId id, void* payload) override;
  void on_mail(Mail& mail) override;
  void on_drained(ConnId id) override;
  void on_tick(std::int64_t now_ms) override;
  void on_sweep(std::int64_t now_ms) override;
  void on_loop_end(std::int64_t now_ms) override;
  void on_shutdown(std::int64_t now_ms) override;
  std::size_t live() const override { return sessions_.size(); }

  // The sink the WebSocket reader reports to (app_ws.cc).
  struct Sink;

 private:
  // ---- session table
  Session* add_session(ConnId id);
  void remove_session(Session* s);
  Session* find(ConnId id);

  // ---- HTTP (app_http.cc)
  std::size_t on_http(Session& s, std::uint8_t* data, std::size_t len);
  // Sends an HTTP answer; with close, closes the connection after it.
  void answer(Session& s, const std::string& response, bool close);
  std::size_t on_room_request(Session& s, const http::Request& req, std::string_view room);
  void accept_upgrade(Session& s, UpgradeHandoff& h);
  std::string healthz() const;
  std::string metrics() const;

  // ---- WebSocket (app_ws.cc)
  std::size_t on_ws(Session& s, std::uint8_t* data, std::size_t len);
  void on_text(Session& s, std::uint8_t* data, std::size_t len);
  void send_json(Session& s, std::string_view json);
  void send_error(Session& s, std::string_view code, std::string_view message,
                  std::string_view ref = {});
  // Sends a close frame. With await_reply the session waits (bounded) for the
  // client's close frame; otherwise the connection is closed right after it.
  void close_session(Session& s, std::uint16_t code, std::string_view reason, bool await_reply);
  void end_session(Session& s);  // the connection is closed; forget the session
  void count_close(std::uint16_t code);
  void count_error(std::string_view code);

  // ---- rooms (app_room.cc)
  // A session that passed the upgrade: admit it, queue it or refuse it.
  void enter_room(Session& s, std::string room_id);
  void admit(RoomEntry& e, Session& s);
  void admit_from_queue(RoomEntry& e);
  void leave_room(Session& s);
  void on_room_message(Session& s, const msg::ClientMessage& m);
  void on_queued_message(Session& s, const msg::ClientMessage& m);
  void list(RoomEntry& e);
  // Sends the room's delta (if it has a net change) to every admitted session.
  void flush(RoomEntry& e);
  void send_presence(Session& s, const FrameRef& frame);
  void send_sync(RoomEntry& e, Session& s);
  void send_queue_positions(RoomEntry& e);
  void retire_if_empty(RoomEntry& e);
  void sweep_rooms(std::int64_t now_ms);

  Context& ctx_;
  Shard& shard_;
  AppStats& stats_;
  json::Decoder decoder_;
  json::DecodeLimits decode_limits_;
  crypto::Random random_;
  std::string scratch_;
  std::vector<Session*> sessions_;
  RoomRules room_rules_;
  std::unordered_map<std::string, std::unique_ptr<RoomEntry>> rooms_;
  std::vector<RoomEntry*> listed_;
  std::vector<RoomEntry*> retiring_;
  bool shutting_down_ = false;
};

}  // namespace rc::rooms
