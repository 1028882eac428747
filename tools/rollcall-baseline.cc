// rollcall-baseline: the "plain per-message broadcast server" that
// BENCHMARKS.md compares rollcall with. It is deliberately ordinary: one
// thread, level-triggered epoll, and for every presence message an immediate
// `delta` with just that change, written to every member of the room at once
// (one frame per message per member: N members sending cost N² frames), with
// no coalescing and no ticks.
//
// It speaks enough of PROTOCOL.md for rollcall-load to measure it exactly as
// it measures rollcall: the same URL scheme and anonymous query, a welcome
// with the member list, `joined`/`updated`/`left` deltas with a growing tick,
// sync, JSON ping and WebSocket ping. Chat and history are not served.
//
// To keep the comparison about fan-out and not about parsing, it parses with
// rollcall's own pure parsers (protocol/http, protocol/ws, protocol/json_decode).
//
// Bounds: a member whose unsent bytes pass --max-outbound-bytes is dropped
// (what an ordinary server does with a consumer it cannot keep up with).

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/shard.h"
#include "protocol/http.h"
#include "protocol/json_decode.h"
#include "protocol/json_writer.h"
#include "protocol/outbound.h"
#include "protocol/route.h"
#include "protocol/ws.h"

namespace rc::baseline {
namespace {

constexpr std::size_t kMessageBytesMax = limits::message_bytes_default;
constexpr std::size_t kPadBytes = json::Decoder::padding();
constexpr std::size_t kReadBytes = 64 * 1024;
constexpr int kEventsMax = 256;
constexpr int kPollMs = 200;

volatile sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

struct Room;

// One connection: an HTTP request head, then a WebSocket member of one room.
struct Conn {
  enum class Phase : std::uint8_t { kHttp, kOpen, kDead };
  int fd = -1;
  Phase phase = Phase::kHttp;
  std::vector<std::uint8_t> in;  // an incomplete tail: in_len bytes, then kPadBytes of room
  std::size_t in_len = 0;
  std::string out;  // unsent bytes
  std::size_t out_off = 0;
  bool writing = false;
  std::optional<ws::MessageReader> reader;
  Room* room = nullptr;
  std::size_t room_index = 0;
  std::string user_id;
  std::string name;
  std::string session_id;
  double x = 0, y = 0;
  std::string emoji;
  bool hand = false;
  std::int64_t hand_at = 0;
  std::string status = "online";
  std::string status_text;
};

struct Room {
  std::string id;
  std::vector<Conn*> members;
  std::uint64_t tick = 0;
};

// A whole unmasked FIN frame.
std::string frame_of(std::uint8_t opcode, std::string_view payload) {
  std::string f(ws::server_header_bytes(payload.size()), '\0');
  ws::write_server_header(reinterpret_cast<std::uint8_t*>(f.data()), opcode, payload.size());
  f.append(payload);
  return f;
}

std::string close_frame(std::uint16_t code, std::string_view reason) {
  std::uint8_t buf[ws::kCloseFrameBytesMax];
  const std::size_t n = ws::write_close_frame(buf, code, reason);
  return std::string(reinterpret_cast<const char*>(buf), n);
}

void write_member(json::Writer& w, const Conn& c) {
  w.begin_object()
      .field("user_id", std::string_view(c.user_id))
      .field("name", std::string_view(c.name));
  w.field("role", "student")
      .field("x", c.x)
      .field("y", c.y)
      .field("emoji", std::string_view(c.emoji));
  w.field("hand", c.hand).field("hand_at", c.hand_at).field("status", std::string_view(c.status));
  w.field("status_text", std::string_view(c.status_text))
      .field("devices", 1)
      .field("connected", true);
  w.end_object();
}

std::string_view status_name(msg::UserStatus s) {
  switch (s) {
    case msg::UserStatus::kAway:
      return "away";
    case msg::UserStatus::kBusy:
      return "busy";
    default:
      return "online";
  }
}

class Server {
 public:
  explicit Server(std::size_t outbound_bytes_max)
      : outbound_bytes_max_(outbound_bytes_max), decoder_(kMessageBytesMax) {}
  ~Server() {
    for (auto& [fd, c] : conns_) ::close(fd);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (epoll_ >= 0) ::close(epoll_);
  }

  Status listen_on(const std::string& bind, std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (inet_pton(AF_INET, bind.c_str(), &addr.sin_addr) != 1)
      return Status::error("bad --bind " + bind);
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind_socket(addr) != 0 || ::listen(listen_fd_, 4096) != 0) {
      return Status::error(std::string("cannot listen: ") + std::strerror(errno));
    }
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_fd_;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, listen_fd_, &ev);
    return Status::ok();
  }

  std::uint64_t dropped_slow() const { return dropped_slow_; }

  void run() {
    std::vector<epoll_event> events(kEventsMax);
    while (g_stop == 0) {
      const int n = epoll_wait(epoll_, events.data(), kEventsMax, kPollMs);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listen_fd_) {
          accept_all();
          continue;
        }
        auto it = conns_.find(fd);
        if (it == conns_.end()) continue;
        Conn& c = *it->second;
        if ((events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) on_readable(c);
        if ((events[i].events & EPOLLOUT) != 0 && c.phase != Conn::Phase::kDead) flush(c);
      }
      reap();
    }
  }

 private:
  int bind_socket(const sockaddr_in& addr) {
    return ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  }

  void accept_all() {
    while (true) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
      conns_.emplace(fd, std::move(c));
    }
  }

  // ---- output

  void want_write(Conn& c, bool on) {
    if (c.writing == on) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.fd = c.fd;
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
    c.writing = on;
  }

  // Writes at once when nothing is waiting; otherwise queues behind it.
  void send(Conn& c, std::string_view bytes) {
    if (c.phase == Conn::Phase::kDead) return;
    if (c.out_off == c.out.size()) {
      const ssize_t n = ::send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n == static_cast<ssize_t>(bytes.size())) return;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        kill(c);
        return;
      }
      c.out.clear();
      c.out_off = 0;
      bytes.remove_prefix(n > 0 ? static_cast<std::size_t>(n) : 0);
    }
    c.out.append(bytes);
    if (c.out.size() - c.out_off > outbound_bytes_max_) {
      ++dropped_slow_;
      kill(c);
      return;
    }
    want_write(c, true);
  }

  void flush(Conn& c) {
    while (c.out_off < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.out_off += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
      kill(c);
      return;
    }
    std::string().swap(c.out);  // an idle member holds no output buffer
    c.out_off = 0;
    want_write(c, false);
  }

  void send_json(Conn& c, std::string_view json) { send(c, frame_of(ws::kText, json)); }

  void broadcast(Room& r, std::string_view frame, const Conn* except = nullptr) {
    for (Conn* m : r.members) {
      if (m != except) send(*m, frame);
    }
  }

  // The connection ends; it is removed (and its room told) in reap(), once
  // no loop over a room's members is running.
  void kill(Conn& c) {
    if (c.phase == Conn::Phase::kDead) return;
    c.phase = Conn::Phase::kDead;
    doomed_.push_back(&c);
  }

  void reap() {
    while (!doomed_.empty()) {
      Conn* c = doomed_.back();
      doomed_.pop_back();
      if (c->room != nullptr) leave(*c);
      ::close(c->fd);
      conns_.erase(c->fd);  // destroys c
    }
  }

  // ---- input

  // Reads into the shared buffer and parses there; only an incomplete tail
  // is copied into the connection's own buffer (which is freed once empty).
  void on_readable(Conn& c) {
    if (c.phase == Conn::Phase::kDead) return;
    const bool tail = c.in_len != 0;
    if (tail && c.in.size() < c.in_len + kReadBytes + kPadBytes)
      c.in.resize(c.in_len + kReadBytes + kPadBytes);
    std::uint8_t* base = tail ? c.in.data() : rbuf_.data();
    const ssize_t n = ::recv(c.fd, base + c.in_len, kReadBytes, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      kill(c);
      return;
    }
    const std::size_t len = c.in_len + static_cast<std::size_t>(n);
    std::size_t used = c.phase == Conn::Phase::kHttp ? on_http(c, base, len) : 0;
    if (c.phase == Conn::Phase::kOpen) used += on_ws(c, base + used, len - used);
    if (c.phase == Conn::Phase::kDead) return;
    const std::size_t rest = len - used;
    if (rest == 0) {
      std::vector<std::uint8_t>().swap(c.in);
    } else if (tail) {
      std::memmove(c.in.data(), c.in.data() + used, rest);
    } else {
      c.in.assign(base + used, base + len);
      c.in.resize(rest + kPadBytes);
    }
    c.in_len = rest;
  }

  // Returns the bytes of the request head once it is complete.
  std::size_t on_http(Conn& c, const std::uint8_t* data, std::size_t len) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), len);
    http::Request req;
    const http::ParseResult pr = http::parse_request(bytes, req);
    if (pr.status == http::ParseStatus::Incomplete) return 0;
    if (pr.status == http::ParseStatus::Error) {
      refuse(c, http::error_response(pr.http_status, pr.error_code, pr.message));
      return 0;
    }
    const http::Routed routed = http::route(req, http::RouteOptions{}, {});
    if (routed.route == http::Route::Healthz) {
      const std::string body = fmt::format(
          R"({{"status":"ok","threads":1,"connections":{},"rooms":{}}})", sessions_, rooms_.size());
      refuse(c, http::response(200, "application/json", body, {}, true));
      return 0;
    }
    if (routed.route == http::Route::Error) {
      refuse(c, http::error_response(routed));
      return 0;
    }
    if (routed.route != http::Route::Room) {
      refuse(c, http::error_response(404, "NOT_FOUND", "the baseline serves rooms only"));
      return 0;
    }
    Result<http::UpgradeQuery> q = http::parse_upgrade_query(req.query);
    if (!q) {
      refuse(c, http::error_response(400, "BAD_REQUEST", q.status().message()));
      return 0;
    }
    const std::size_t head = req.head_bytes;
    c.user_id = q->has_user_id ? q->user_id : fmt::format("anon-{}", next_session_);
    c.name = q->has_name ? q->name : c.user_id;
    send(c, fmt::format(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Accept: {}\r\n\r\n",
                ws::accept_key(req.header("sec-websocket-key"))));
    c.phase = Conn::Phase::kOpen;
    c.reader.emplace(kMessageBytesMax, kPadBytes);
    join(c, std::string(routed.room));
    return head;
  }

  void refuse(Conn& c, const std::string& response) {
    send(c, response);
    kill(c);
  }

  // The reader's events for one connection.
  struct Sink {
    Server& server;
    Conn& c;
    void on_text(std::uint8_t* data, std::size_t len) { server.on_text(c, data, len); }
    void on_ping(std::string_view payload) { server.send(c, frame_of(ws::kPong, payload)); }
    void on_pong(std::string_view) {}
    void on_close(std::uint16_t code, std::string_view) {
      server.send(
          c, code == ws::close_code::kNoStatus ? frame_of(ws::kClose, {}) : close_frame(code, {}));
      server.kill(c);
    }
    void on_error(std::uint16_t code, std::string_view reason) {
      server.send(c, close_frame(code, reason));
      server.kill(c);
    }
  };

  std::size_t on_ws(Conn& c, std::uint8_t* data, std::size_t len) {
    Sink sink{*this, c};
    return c.reader->feed(data, len, sink);
  }

  void on_text(Conn& c, std::uint8_t* data, std::size_t len) {
    if (c.phase != Conn::Phase::kOpen) return;
    msg::ClientMessage m;
    json::DecodeError err;
    scratch_.clear();
    if (!decoder_.decode(data, len, json::DecodeLimits{}, m, err)) {
      out::error_json(scratch_, "BAD_REQUEST", err.message, err.ref);
      send_json(c, scratch_);
      return;
    }
    switch (m.type) {
      case msg::Type::kPresence:
        on_presence(c, m.presence);
        return;
      case msg::Type::kSync:
        send_sync(c);
        return;
      case msg::Type::kPing:
        json::Writer(scratch_)
            .begin_object()
            .field("type", "pong")
            .field("ts", wall_ms())
            .end_object();
        send_json(c, scratch_);
        return;
      default:
        out::error_json(scratch_, "INTERNAL", "the baseline serves presence only", m.client_id);
        send_json(c, scratch_);
        return;
    }
  }

  // ---- rooms

  Room& room_of(const std::string& id) {
    auto it = rooms_.find(id);
    if (it == rooms_.end()) {
      auto r = std::make_unique<Room>();
      r->id = id;
      it = rooms_.emplace(id, std::move(r)).first;
    }
    return *it->second;
  }

  void join(Conn& c, std::string room_id) {
    Room& r = room_of(room_id);
    c.room = &r;
    c.room_index = r.members.size();
    c.session_id = fmt::format("b{}", next_session_++);
    r.members.push_back(&c);
    ++sessions_;
    ++r.tick;
    scratch_.clear();
    json::Writer w(scratch_);
    w.begin_object().field("type", "welcome").field("room", std::string_view(r.id));
    w.field("user_id", std::string_view(c.user_id))
        .field("session_id", std::string_view(c.session_id));
    w.field("role", "student")
        .field("tick_ms", 0)
        .field("tick", r.tick)
        .key("members")
        .begin_array();
    for (const Conn* m : r.members) write_member(w, *m);
    w.end_array().key("chat").begin_object().key("messages").begin_array().end_array();
    w.field("last_seq", 0).field("complete", true).end_object().end_object();
    send_json(c, scratch_);
    scratch_.clear();
    json::Writer d(scratch_);
    d.begin_object().field("type", "delta").field("tick", r.tick).key("joined").begin_array();
    write_member(d, c);
    d.end_array().end_object();
    broadcast(r, frame_of(ws::kText, scratch_), &c);
  }

  void leave(Conn& c) {
    Room& r = *c.room;
    c.room = nullptr;
    Conn* last = r.members.back();
    r.members[c.room_index] = last;
    last->room_index = c.room_index;
    r.members.pop_back();
    --sessions_;
    if (r.members.empty()) {
      const std::string id = r.id;  // the key must outlive the room it names
      rooms_.erase(id);
      return;
    }
    ++r.tick;
    scratch_.clear();
    json::Writer(scratch_)
        .begin_object()
        .field("type", "delta")
        .field("tick", r.tick)
        .key("left")
        .begin_array()
        .value(std::string_view(c.user_id))
        .end_array()
        .end_object();
    broadcast(r, frame_of(ws::kText, scratch_));
  }

  // Applies the update and sends it, as sent, to every member right away.
  void on_presence(Conn& c, const msg::Presence& p) {
    using P = msg::Presence;
    Room& r = *c.room;
    ++r.tick;
    scratch_.clear();
    json::Writer w(scratch_);
    w.begin_object().field("type", "delta").field("tick", r.tick).key("updated").begin_array();
    w.begin_object().field("user_id", std::string_view(c.user_id));
    if (p.has & P::kHasName) w.field("name", std::string_view(c.name.assign(p.name)));
    if (p.has & P::kHasX) w.field("x", c.x = p.x);
    if (p.has & P::kHasY) w.field("y", c.y = p.y);
    if (p.has & P::kHasEmoji) w.field("emoji", std::string_view(c.emoji.assign(p.emoji)));
    if (p.has & P::kHasHand) {
      if (p.hand && !c.hand) c.hand_at = wall_ms();
      if (!p.hand) c.hand_at = 0;
      c.hand = p.hand;
      w.field("hand", c.hand).field("hand_at", c.hand_at);
    }
    if (p.has & P::kHasStatus)
      w.field("status", std::string_view(c.status.assign(status_name(p.status))));
    if (p.has & P::kHasStatusText) {
      w.field("status_text", std::string_view(c.status_text.assign(p.status_text)));
    }
    w.end_object().end_array().end_object();
    broadcast(r, frame_of(ws::kText, scratch_));
  }

  void send_sync(Conn& c) {
    Room& r = *c.room;
    ++r.tick;
    scratch_.clear();
    json::Writer w(scratch_);
    w.begin_object().field("type", "sync").field("tick", r.tick).key("members").begin_array();
    for (const Conn* m : r.members) write_member(w, *m);
    w.end_array().end_object();
    send_json(c, scratch_);
  }

  std::size_t outbound_bytes_max_;
  json::Decoder decoder_;
  int listen_fd_ = -1;
  int epoll_ = -1;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::unordered_map<std::string, std::unique_ptr<Room>> rooms_;
  std::vector<Conn*> doomed_;
  std::vector<std::uint8_t> rbuf_ = std::vector<std::uint8_t>(kReadBytes + kPadBytes);
  std::string scratch_;
  std::uint64_t next_session_ = 1;
  std::uint64_t sessions_ = 0;
  std::uint64_t dropped_slow_ = 0;
};

}  // namespace
}  // namespace rc::baseline

int main(int argc, char** argv) {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 8090;
  std::size_t outbound_max = std::size_t{4} << 20;
  CLI::App app{
      "rollcall-baseline: a plain per-message broadcast WebSocket server (the benchmark baseline)"};
  app.add_option("--bind", bind, "Address to listen on")->capture_default_str();
  app.add_option("--port", port, "Port to listen on")->capture_default_str();
  app.add_option("--max-outbound-bytes", outbound_max,
                 "Unsent bytes after which a member is dropped")
      ->check(CLI::Range(std::size_t{4096}, std::size_t{1} << 32))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = rc::baseline::on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  rc::baseline::Server server(outbound_max);
  if (rc::Status st = server.listen_on(bind, port); !st) {
    std::fprintf(stderr, "rollcall-baseline: %s\n", st.message().c_str());
    return 1;
  }
  std::fprintf(stderr, "rollcall-baseline: listening on %s:%u\n", bind.c_str(),
               static_cast<unsigned>(port));
  server.run();
  std::fprintf(stderr, "rollcall-baseline: stopped (%llu members dropped as slow consumers)\n",
               static_cast<unsigned long long>(server.dropped_slow()));
  return 0;
}
