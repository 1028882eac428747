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
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/crypto.h"
#include "core/shard.h"
#include "protocol/http.h"
#include "protocol/json_decode.h"
#include "protocol/jwt.h"
#include "rooms/context.h"
#include "rooms/room_entry.h"
#include "rooms/session.h"
#include "rooms/tickets.h"

namespace rc::rooms {

// A user's chat burst, in seconds of --chat-rate (PROTOCOL 4: twice the rate).
inline constexpr std::int64_t kChatBurstSeconds = 2;
// How long a client may take to send a whole request head.
inline constexpr std::int64_t kHttpHeadTimeoutMs = 10000;
// While shutting down: how long a connection that has not sent a whole
// request yet may take to (it gets its answer, most likely a 503).
inline constexpr std::int64_t kShutdownHeadTimeoutMs = 1000;
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
  // ---- identity (app_auth.cc)
  std::size_t on_room_request(Session& s, const http::Request& req, std::string_view room);
  void on_ticket_request(Session& s, const http::Request& req);
  // Verifies `Authorization: Bearer`; on failure answers 401 and returns nullopt.
  std::optional<jwt::Claims> bearer_claims(Session& s, const http::Request& req);
  void redeem_ticket(Session& s, std::unique_ptr<UpgradeHandoff> h);
  // Sends the upgrade on to the shard owning the room, or accepts it here.
  void route_upgrade(Session& s, std::unique_ptr<UpgradeHandoff> h);
  void reject(Session& s, int status, std::string_view code, std::string_view message);
  void accept_upgrade(Session& s, UpgradeHandoff& h);
  std::string healthz() const;
  std::string metrics() const;

  // ---- WebSocket (app_ws.cc)
  std::size_t on_ws(Session& s, std::uint8_t* data, std::size_t len);
  void on_text(Session& s, std::uint8_t* data, std::size_t len);
  // One message, now (on_text, or held ones once the welcome is out).
  void handle_text(Session& s, std::uint8_t* data, std::size_t len);
  // Holds a message that came before the welcome (room opening, since=S read).
  void hold_early(Session& s, const std::uint8_t* data, std::size_t len);
  // Marks s to have its held messages handled at the end of this loop turn.
  void release_early(Session& s);
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
  RoomEntry& room_entry(const std::string& room_id);
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
  void send_queued(Session& s, std::uint32_t position);
  void send_queue_positions(RoomEntry& e);
  void retire_if_empty(RoomEntry& e);
  // Brings the shard's members and queued gauges up to date with e.
  void count_room(RoomEntry& e);
  void sweep_rooms();
  // Keeps the room's entry in timers_ no later than its next timer change.
  void schedule_timer(RoomEntry& e);
  // Runs the room timers (grace expiry, idle, away) due by now_ms.
  void run_timers(std::int64_t now_ms);

  // ---- chat (app_chat.cc)
  std::size_t recent_max() const;
  // Drops the oldest of e.recent beyond recent_max(), and recent_complete with
  // them when one of them is still retained.
  void trim_recent(RoomEntry& e);
  void request_open(RoomEntry& e);
  void on_log_reply(persist::LogReply& r);
  void on_opened(persist::Opened& o);
  void on_committed(persist::Committed& c);
  void on_read(persist::ReadResult& r);
  void on_chat(RoomEntry& e, Session& s, const msg::ClientMessage& m);
  void on_history(RoomEntry& e, Session& s, const msg::ClientMessage& m);
  bool take_chat_token(Member& m);
  // The welcome, now (chat from the room's memory) or after a log read (since=S beyond it).
  void send_welcome_or_resume(RoomEntry& e, Session& s);
  // msgs: a deque or vector of persist::ChatMessage; those from index `first` go out.
  template <typename Messages>
  void send_welcome(RoomEntry& e, Session& s, const Messages& msgs, std::size_t first, bool complete);
  void close_all_for_shutdown();

  Context& ctx_;
  Shard& shard_;
  AppStats& stats_;
  json::Decoder decoder_;
  json::DecodeLimits decode_limits_;
  crypto::Random random_;
  std::string scratch_;
  std::vector<Session*> sessions_;
  RoomRules room_rules_;
  TicketStore tickets_;
  std::unordered_map<std::string, std::unique_ptr<RoomEntry>> rooms_;
  std::vector<RoomEntry*> listed_;
  std::vector<RoomEntry*> retiring_;
  // Rooms by the time their next timer change falls due, each at most once
  // (at RoomEntry::timer_due); run at the start of each tick.
  std::set<std::pair<std::int64_t, RoomEntry*>> timers_;
  // Sessions whose held early messages are due (handled in on_loop_end).
  std::vector<ConnId> early_due_;
  // Chat buckets of users who left rooms that are gone, by room id, for the
  // room's next incarnation (pruned by sweep_rooms).
  std::unordered_map<std::string, LeftBuckets> retired_buckets_;
  bool shutting_down_ = false;
  bool shutdown_closed_ = false;
  std::uint64_t appends_in_flight_ = 0;  // chat handed to the log, not yet answered
};

}  // namespace rc::rooms
