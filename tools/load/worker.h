#pragma once
// One rollcall-load thread: its share of the client sessions, one epoll
// instance, non-blocking sockets, and the client side of the protocol
// (upgrade, masked frames, pings answered, server messages parsed and applied
// to a per-client model of the room).
//
// The main thread moves every worker through the phases of shared.h; a worker
// notices a phase change within kPollNsMax and does that phase's step once
// (seeding the send schedule, sending the sync probes, comparing models,
// starting the close handshakes).
//
// Threading: a Worker is created and filled (add()) by the main thread before
// its thread starts; from then on only its own thread touches it, apart from
// Shared's atomics. counters() is read by the main thread after join().
//
// Parsing shortcut: a delta goes out as the same bytes to every member of a
// room, so a worker keeps, per room, the bytes and the parse of the last
// kCacheSlots deltas it decoded (slot = tick % kCacheSlots). A client whose
// frame is byte-for-byte a cached delta (memcmp) reuses the parse; it still
// receives, reads and applies every frame itself.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "protocol/ws.h"
#include "tools/load/net.h"
#include "tools/load/shared.h"
#include "tools/load/ws_client.h"

namespace rc::load {

inline constexpr std::size_t kPadBytes = simdjson::SIMDJSON_PADDING;
inline constexpr std::size_t kReadBytes = 256 * 1024;              // one recv() at most
inline constexpr std::size_t kMessageBytesMax = 16 * 1024 * 1024;  // larger server frames fail
// A presence update is skipped (and counted) while a session has more unsent
// bytes than this: the generator never queues without bound.
inline constexpr std::size_t kUnsentBytesMax = 256 * 1024;
inline constexpr std::uint32_t kConnectAttemptsMax = 5;
inline constexpr std::int64_t kRetryDelayNs = 250'000'000;  // times the attempt number
inline constexpr std::uint32_t kInflightMax = 256;  // connects + upgrades under way per worker
inline constexpr int kEventsMax = 512;
inline constexpr std::int64_t kPollNsMax = 5'000'000;
inline constexpr std::int64_t kCloseWaitNs = 2'000'000'000;
inline constexpr std::uint16_t kCloseNormal = 1000;
inline constexpr std::size_t kCacheSlots = 64;  // parsed deltas kept per room
inline constexpr std::int64_t kSettlePassNs =
    20'000'000;  // models compared with the truth this often

// A growable byte buffer that always keeps kPadBytes readable after its
// content (simdjson reads past the end of what it parses).
class PaddedBytes {
 public:
  std::uint8_t* data() { return buf_.data(); }
  std::size_t size() const { return len_; }
  std::uint8_t* readable_end() { return buf_.data() + len_ + kPadBytes; }
  void append(const std::uint8_t* p, std::size_t n) {
    if (len_ + n + kPadBytes > buf_.size())
      buf_.resize(std::max(2 * buf_.size(), len_ + n + kPadBytes));
    std::memcpy(buf_.data() + len_, p, n);
    len_ += n;
  }
  void consume(std::size_t n) {
    std::memmove(buf_.data(), buf_.data() + n, len_ - n);
    len_ -= n;
  }
  void release() {
    std::vector<std::uint8_t>().swap(buf_);
    len_ = 0;
  }

 private:
  std::vector<std::uint8_t> buf_;
  std::size_t len_ = 0;
};

// xorshift64: masks, keys, jitter and positions; not for anything secret.
struct FastRandom {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

enum class State : std::uint8_t {
  kWaiting,
  kConnecting,
  kUpgrading,
  kOpen,
  kReady,
  kClosing,
  kDone
};

struct Client {
  int fd = -1;
  std::uint32_t room = 0;
  std::uint32_t member = 0;
  std::uint32_t source = 0;
  State state = State::kWaiting;
  std::uint8_t attempts = 0;
  bool probe = false;           // sends the room's sync at the end
  bool sync_requested = false;  // probe: its sync is on the way
  bool close_sent = false;
  bool writing = false;  // EPOLLOUT is armed
  bool assembling = false;
  bool has_tick = false;
  bool settled = false;  // its model matched its room's truth (or was compared at the deadline)
  std::uint64_t last_tick = 0;
  std::int64_t second = -1;  // window second of sec_deltas
  std::uint64_t sec_deltas = 0;
  std::string accept;  // the expected Sec-WebSocket-Accept while upgrading
  PaddedBytes in;      // received bytes not yet parsed (a partial frame)
  PaddedBytes frag;    // a fragmented message being assembled
  std::string out;     // bytes not yet written
  std::size_t out_off = 0;
  RoomModel model;
};

class Worker {
 public:
  Worker(Shared& shared, std::uint32_t index)
      : shared_(shared),
        s_(shared.settings),
        rng_{0x9E3779B97F4A7C15ull * (index + 1) ^ static_cast<std::uint64_t>(mono_ns())},
        details_(s_.mode == Mode::kPresence),
        rbuf_(kReadBytes + kPadBytes) {
    char buf[96];
    char ip[INET_ADDRSTRLEN] = "";
    inet_ntop(AF_INET, &s_.target, ip, sizeof ip);
    std::snprintf(buf, sizeof buf, "%s:%u", ip, static_cast<unsigned>(s_.port));
    host_port_ = buf;
    if (details_) cache_.resize(std::size_t{s_.rooms} * kCacheSlots);
    const double seconds = s_.duration_s + 1;
    counters_.frames_per_second.assign(static_cast<std::size_t>(seconds), 0);
    period_ns_ = s_.rate_hz > 0 ? static_cast<std::int64_t>(1e9 / s_.rate_hz) : 0;
  }
  ~Worker() {
    for (Client& c : clients_) {
      if (c.fd >= 0) ::close(c.fd);
    }
    if (epoll_ >= 0) ::close(epoll_);
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void reserve(std::size_t n) { clients_.reserve(n); }
  void add(std::uint32_t room, std::uint32_t member, std::uint32_t source, bool probe) {
    Client& c = clients_.emplace_back();
    c.room = room;
    c.member = member;
    c.source = source;
    c.probe = probe;
    if (details_) c.model = RoomModel(s_.members_per_room);
  }

  const Counters& counters() const { return counters_; }

  void run() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) return;
    t0_ns_ = mono_ns();
    const std::size_t share = clients_.size();
    ramp_per_ns_ = s_.ramp_per_s / 1e9 * static_cast<double>(share) /
                   std::max<double>(1.0, static_cast<double>(s_.sessions));
    std::vector<epoll_event> events(kEventsMax);
    Phase seen = Phase::kConnect;
    while (true) {
      const Phase p = shared_.current();
      std::int64_t now = mono_ns();
      while (seen < p) {
        seen = static_cast<Phase>(static_cast<int>(seen) + 1);
        enter(seen, now);
      }
      if (p == Phase::kDone) break;
      if (p <= Phase::kRun) open_more(now);
      if (p == Phase::kRun && details_) send_due(now);
      if (p == Phase::kSettle && now >= next_settle_ns_) {
        settle(false);
        next_settle_ns_ = now + kSettlePassNs;
      }
      if (p == Phase::kClose && !close_reported_ && (open_fds_ == 0 || now >= close_deadline_ns_)) {
        close_reported_ = true;
        shared_.workers_at_phase.fetch_add(1, std::memory_order_acq_rel);
      }
      std::int64_t wait = kPollNsMax;
      if (p == Phase::kRun && !heap_.empty())
        wait = std::clamp<std::int64_t>(heap_.top().first - now, 0, wait);
      timespec ts{0, static_cast<long>(wait)};
      const int n = epoll_pwait2(epoll_, events.data(), kEventsMax, &ts, nullptr);
      if (n <= 0) continue;
      recv_ns_ = mono_ns();
      recv_wall_us_ = wall_us();
      for (int i = 0; i < n; ++i) on_event(clients_[events[i].data.u32], events[i].events);
    }
    for (Client& c : clients_) {
      counters_.client_deltas_per_s_max = std::max(counters_.client_deltas_per_s_max, c.sec_deltas);
      if (c.fd >= 0) end(c);
    }
  }

 private:
  using Due = std::pair<std::int64_t, std::uint32_t>;

  struct Cached {
    std::string bytes;
    ServerMessage msg;
  };

  // ---- phases

  void enter(Phase p, std::int64_t now) {
    switch (p) {
      case Phase::kRun:
        if (!details_ || period_ns_ == 0) return;
        for (std::uint32_t i = 0; i < clients_.size(); ++i) {
          const auto offset =
              static_cast<std::int64_t>(rng_.unit() * static_cast<double>(period_ns_));
          heap_.push({now + offset, i});
        }
        return;
      case Phase::kSync:
        for (Client& c : clients_) {
          if (!c.probe || c.state != State::kReady) continue;
          c.sync_requested = true;
          send_text(c, R"({"type":"sync"})");
          ++counters_.probes_sent;
        }
        shared_.probes_sent.fetch_add(counters_.probes_sent, std::memory_order_acq_rel);
        shared_.workers_at_phase.fetch_add(1, std::memory_order_acq_rel);
        return;
      case Phase::kSettle: {
        std::uint64_t open = 0;
        for (const Client& c : clients_) open += c.state == State::kReady ? 1 : 0;
        shared_.to_settle.fetch_add(open, std::memory_order_acq_rel);
        shared_.workers_at_phase.fetch_add(1, std::memory_order_acq_rel);
        return;
      }
      case Phase::kCompare:
        settle(true);
        shared_.workers_at_phase.fetch_add(1, std::memory_order_acq_rel);
        return;
      case Phase::kClose:
        close_deadline_ns_ = now + kCloseWaitNs;
        for (Client& c : clients_) {
          if (c.fd < 0) continue;
          if (c.state != State::kOpen && c.state != State::kReady) {
            end(c);
            continue;
          }
          c.state = State::kClosing;
          c.close_sent = true;
          append_masked_frame(c.out, kClose, close_payload(kCloseNormal),
                              static_cast<std::uint32_t>(rng_.next()));
          flush(c);
        }
        return;
      default:
        return;
    }
  }

  // A client has converged once its model equals its room's truth: after
  // the sync no change happens, so later deltas cannot move it away again.
  // At the deadline (final) the clients still apart are the mismatches.
  void settle(bool final) {
    std::uint64_t newly = 0;
    for (Client& c : clients_) {
      if (c.settled || c.state != State::kReady || c.room >= shared_.truth.size()) continue;
      if (shared_.truth_ready[c.room].load(std::memory_order_acquire) == 0) {
        if (final) ++counters_.clients_unchecked;
        continue;
      }
      const std::size_t d = c.model.differences(shared_.truth[c.room]);
      if (d != 0 && !final) continue;
      c.settled = true;
      ++counters_.clients_compared;
      if (d == 0) {
        ++newly;
      } else {
        ++counters_.clients_mismatched;
        counters_.entries_mismatched += d;
      }
    }
    if (newly != 0) shared_.settled.fetch_add(newly, std::memory_order_acq_rel);
  }

  // ---- connecting

  void set_state(Client& c, State next) {
    const bool was = c.state == State::kConnecting || c.state == State::kUpgrading;
    const bool is = next == State::kConnecting || next == State::kUpgrading;
    if (was && !is) --inflight_;
    if (!was && is) ++inflight_;
    c.state = next;
  }

  void open_more(std::int64_t now) {
    for (std::size_t i = 0; i < retry_.size() && inflight_ < kInflightMax;) {
      if (retry_[i].first > now) {
        ++i;
        continue;
      }
      const std::uint32_t idx = retry_[i].second;
      retry_[i] = retry_.back();
      retry_.pop_back();
      start_connect(clients_[idx], idx, now);
    }
    const double allowed = static_cast<double>(now - t0_ns_) * ramp_per_ns_ + 1;
    while (next_open_ < clients_.size() && static_cast<double>(next_open_) < allowed &&
           inflight_ < kInflightMax) {
      start_connect(clients_[next_open_], next_open_, now);
      ++next_open_;
    }
  }

  void start_connect(Client& c, std::uint32_t idx, std::int64_t now) {
    ++c.attempts;
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      ++counters_.connect_errors;
      retry_or_fail(c, idx, now);
      return;
    }
    const int one = 1;
    // Choose the source port at connect() time, per destination, instead of
    // reserving one per source address at bind() time.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr = s_.source_addrs[c.source % s_.source_addrs.size()];
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(s_.port);
    dst.sin_addr = s_.target;
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.u32 = idx;
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
        (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS) ||
        epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      ++counters_.connect_errors;
      retry_or_fail(c, idx, now);
      return;
    }
    c.fd = fd;
    c.writing = true;
    ++open_fds_;
    set_state(c, State::kConnecting);
  }

  void retry_or_fail(Client& c, std::uint32_t idx, std::int64_t now) {
    if (c.attempts < kConnectAttemptsMax && shared_.current() == Phase::kConnect) {
      set_state(c, State::kWaiting);
      retry_.push_back({now + kRetryDelayNs * c.attempts, idx});
      return;
    }
    set_state(c, State::kDone);
    shared_.failed.fetch_add(1, std::memory_order_acq_rel);
  }

  void on_connected(Client& c, std::uint32_t idx, std::uint32_t ev) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (ev & (EPOLLERR | EPOLLHUP)) != 0) {
      ++counters_.connect_errors;
      close_fd(c);
      retry_or_fail(c, idx, mono_ns());
      return;
    }
    const std::string key = make_client_key(rng_.next(), rng_.next());
    c.accept = rc::ws::accept_key(key);
    std::string target = "/ws/rooms/" + s_.room_prefix + "-" + std::to_string(c.room);
    const std::string user = "m" + std::to_string(c.member);
    target.append("?user_id=").append(user).append("&name=").append(user);
    c.out = upgrade_request(host_port_, target, key);
    c.out_off = 0;
    set_state(c, State::kUpgrading);
    flush(c);
  }

  // ---- I/O

  void close_fd(Client& c) {
    if (c.fd < 0) return;
    ::close(c.fd);  // also leaves the epoll set
    c.fd = -1;
    --open_fds_;
    c.writing = false;
    c.in.release();
    c.frag.release();
    std::string().swap(c.out);
    c.out_off = 0;
  }

  // The session is over. One given up on before its welcome counts as failed
  // while the main thread still waits for the sessions to open.
  void end(Client& c) {
    const bool before_welcome = c.state != State::kReady && c.state != State::kClosing;
    close_fd(c);
    set_state(c, State::kDone);
    if (before_welcome && shared_.current() == Phase::kConnect) {
      shared_.failed.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  void want_write(Client& c, bool on) {
    if (c.writing == on) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u32 = static_cast<std::uint32_t>(&c - clients_.data());
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
    c.writing = on;
  }

  void flush(Client& c) {
    while (c.out_off < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.out_off += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        want_write(c, true);
        return;
      }
      ++counters_.socket_errors;
      end(c);
      return;
    }
    c.out.clear();
    c.out_off = 0;
    want_write(c, false);
  }

  void send_text(Client& c, std::string_view payload) {
    if (c.fd < 0) return;
    append_masked_frame(c.out, kText, payload, static_cast<std::uint32_t>(rng_.next()));
    flush(c);
  }

  void on_event(Client& c, std::uint32_t ev) {
    if (c.fd < 0) return;
    if (c.state == State::kConnecting) {
      on_connected(c, static_cast<std::uint32_t>(&c - clients_.data()), ev);
      return;
    }
    if ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
      on_readable(c);
      if (c.fd < 0) return;
    }
    if ((ev & EPOLLOUT) != 0) flush(c);
  }

  void on_readable(Client& c) {
    const ssize_t n = ::recv(c.fd, rbuf_.data(), kReadBytes, 0);
    if (n > 0) {
      if (in_window()) counters_.bytes += static_cast<std::uint64_t>(n);
      on_bytes(c, rbuf_.data(), static_cast<std::size_t>(n));
      return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n < 0) {
      ++counters_.socket_errors;
    } else if (!c.close_sent) {
      ++counters_.eof_closes;
    }
    end(c);
  }

  void on_bytes(Client& c, std::uint8_t* data, std::size_t n) {
    if (c.in.size() == 0 && c.state != State::kUpgrading) {
      // The common case: parse straight from the receive buffer (its padding
      // stays readable) and keep only an incomplete tail.
      const std::size_t used = consume(c, data, n, rbuf_.data() + rbuf_.size());
      if (c.fd >= 0 && used < n) c.in.append(data + used, n - used);
      return;
    }
    c.in.append(data, n);
    if (c.state == State::kUpgrading) {
      const std::string_view head(reinterpret_cast<const char*>(c.in.data()), c.in.size());
      const Handshake h = check_upgrade_answer(head, c.accept);
      if (h.status == HandshakeStatus::kIncomplete) return;
      if (h.status == HandshakeStatus::kError) {
        ++counters_.handshake_errors;
        ++counters_.handshake_statuses[h.http_status];
        end(c);
        return;
      }
      c.in.consume(h.head_bytes);
      std::string().swap(c.accept);
      set_state(c, State::kOpen);
    }
    const std::size_t used = consume(c, c.in.data(), c.in.size(), c.in.readable_end());
    if (c.fd >= 0) c.in.consume(used);
  }

  // Handles the whole frames at the start of data[0..len); bytes up to
  // readable_end may be read (parser padding). Returns the bytes used.
  std::size_t consume(Client& c, std::uint8_t* data, std::size_t len, std::uint8_t* readable_end) {
    std::size_t pos = 0;
    while (c.fd >= 0) {
      const ServerFrame f = parse_server_frame(data + pos, len - pos, kMessageBytesMax);
      if (f.status == FrameStatus::kIncomplete) break;
      if (f.status == FrameStatus::kError) {
        ++counters_.protocol_errors;
        end(c);
        break;
      }
      on_frame(c, f, static_cast<std::size_t>(readable_end - f.payload));
      pos += f.frame_bytes;
    }
    return pos;
  }

  void on_frame(Client& c, const ServerFrame& f, std::size_t capacity) {
    const std::string_view payload(reinterpret_cast<const char*>(f.payload), f.payload_bytes);
    switch (f.opcode) {
      case kText:
      case kBinary:
        if (f.fin && !c.assembling) {
          on_message(c, f.payload, f.payload_bytes, capacity);
          return;
        }
        if (c.assembling) break;  // a new message inside a fragmented one
        c.assembling = true;
        c.frag.append(f.payload, f.payload_bytes);
        return;
      case kContinuation:
        if (!c.assembling) break;
        c.frag.append(f.payload, f.payload_bytes);
        if (f.fin) {
          c.assembling = false;
          on_message(c, c.frag.data(), c.frag.size(), c.frag.size() + kPadBytes);
          c.frag.release();
        }
        return;
      case kPing:
        ++counters_.pings_answered;
        append_masked_frame(c.out, kPong, payload, static_cast<std::uint32_t>(rng_.next()));
        flush(c);
        return;
      case kPong:
        return;
      case kClose: {
        const std::uint16_t code =
            f.payload_bytes >= 2 ? static_cast<std::uint16_t>((f.payload[0] << 8) | f.payload[1])
                                 : 1005;
        if (!c.close_sent) {
          ++counters_.server_closes;
          ++counters_.close_codes[code];
          c.close_sent = true;
          append_masked_frame(c.out, kClose, code == 1005 ? std::string() : close_payload(code),
                              static_cast<std::uint32_t>(rng_.next()));
          flush(c);
        }
        if (c.fd >= 0) end(c);
        return;
      }
      default:
        break;
    }
    ++counters_.protocol_errors;
    end(c);
  }

  // ---- messages

  bool in_window() const {
    return recv_ns_ >= shared_.window_start_ns.load(std::memory_order_relaxed) &&
           recv_ns_ < shared_.window_end_ns.load(std::memory_order_relaxed);
  }

  const ServerMessage* decode(Client& c, const std::uint8_t* data, std::size_t len,
                              std::size_t capacity) {
    Cached* slot = nullptr;
    std::uint64_t tick = 0;
    if (details_ && delta_tick(data, len, tick)) {
      slot = &cache_[c.room * kCacheSlots + tick % kCacheSlots];
      if (slot->bytes.size() == len && std::memcmp(slot->bytes.data(), data, len) == 0)
        return &slot->msg;
    }
    if (!parser_.parse(data, len, capacity, details_, scratch_)) return nullptr;
    if (slot == nullptr || scratch_.kind != Kind::kDelta) return &scratch_;
    slot->bytes.assign(reinterpret_cast<const char*>(data), len);
    std::swap(slot->msg, scratch_);
    return &slot->msg;
  }

  // The tick of a delta written the way both servers write it (type first,
  // then tick): only a cache key, the cached bytes are compared in full.
  static bool delta_tick(const std::uint8_t* data, std::size_t len, std::uint64_t& tick) {
    static constexpr std::string_view kPrefix = R"({"type":"delta","tick":)";
    if (len <= kPrefix.size() || std::memcmp(data, kPrefix.data(), kPrefix.size()) != 0)
      return false;
    std::size_t i = kPrefix.size();
    if (data[i] < '0' || data[i] > '9') return false;
    tick = 0;
    for (; i < len && data[i] >= '0' && data[i] <= '9'; ++i) tick = tick * 10 + (data[i] - '0');
    return true;
  }

  void on_message(Client& c, const std::uint8_t* data, std::size_t len, std::size_t capacity) {
    ++counters_.frames_total;
    const bool window = in_window();
    if (window) {
      ++counters_.frames;
      const auto sec = static_cast<std::size_t>(
          (recv_ns_ - shared_.window_start_ns.load(std::memory_order_relaxed)) / 1000000000);
      if (sec < counters_.frames_per_second.size()) ++counters_.frames_per_second[sec];
    }
    const ServerMessage* m = decode(c, data, len, capacity);
    if (m == nullptr) {
      ++counters_.protocol_errors;
      return;
    }
    switch (m->kind) {
      case Kind::kWelcome:
        if (c.state == State::kOpen) {
          set_state(c, State::kReady);
          shared_.ready.fetch_add(1, std::memory_order_acq_rel);
        }
        if (m->tick_ms >= 0) shared_.tick_ms.store(m->tick_ms, std::memory_order_relaxed);
        if (details_) c.model.replace(m->members);
        c.has_tick = m->has_tick;
        c.last_tick = m->tick;
        return;
      case Kind::kDelta:
        on_delta(c, *m, window);
        return;
      case Kind::kSync:
        on_sync(c, *m);
        return;
      case Kind::kQueued:
        ++counters_.queued_messages;
        return;
      case Kind::kError:
        ++counters_.errors_received;
        ++counters_.error_codes[m->code];
        return;
      default:
        return;
    }
  }

  void on_delta(Client& c, const ServerMessage& m, bool window) {
    if (window) {
      ++counters_.deltas;
      const std::int64_t sec =
          (recv_ns_ - shared_.window_start_ns.load(std::memory_order_relaxed)) / 1000000000;
      if (sec != c.second) {
        counters_.client_deltas_per_s_max =
            std::max(counters_.client_deltas_per_s_max, c.sec_deltas);
        c.second = sec;
        c.sec_deltas = 0;
      }
      ++c.sec_deltas;
    }
    // Only inside the window: the final sync probe moves its room's tick too.
    if (window && c.has_tick && m.has_tick && m.tick != c.last_tick + 1) ++counters_.tick_gaps;
    if (m.has_tick) {
      c.has_tick = true;
      c.last_tick = m.tick;
    }
    if (!details_) return;
    counters_.foreign_entries += m.foreign;
    for (const MemberFields& e : m.joined) {
      if (!c.model.upsert(e)) ++counters_.model_anomalies;
      if (window) sample(e);
    }
    for (const MemberFields& e : m.updated) {
      if (!c.model.update(e)) ++counters_.model_anomalies;
      if (window) sample(e);
    }
    for (std::int32_t i : m.left) {
      if (!c.model.remove(i)) ++counters_.model_anomalies;
    }
  }

  void sample(const MemberFields& e) {
    if (!e.has_text || e.stamp <= 0) return;
    ++counters_.deliveries;
    const std::int64_t lat = recv_wall_us_ - e.stamp;
    counters_.latency_us.add(lat > 0 ? static_cast<std::uint64_t>(lat) : 0);
  }

  void on_sync(Client& c, const ServerMessage& m) {
    if (details_) c.model.replace(m.members);
    if (m.has_tick) {
      c.has_tick = true;
      c.last_tick = m.tick;
    }
    if (!c.sync_requested) {
      ++counters_.unrequested_syncs;
      return;
    }
    c.sync_requested = false;
    if (!details_ || c.room >= shared_.truth.size()) return;
    shared_.truth[c.room] = c.model;
    shared_.truth_ready[c.room].store(1, std::memory_order_release);
    shared_.synced.fetch_add(1, std::memory_order_acq_rel);
  }

  // ---- presence

  void send_due(std::int64_t now) {
    while (!heap_.empty() && heap_.top().first <= now) {
      const Due d = heap_.top();
      heap_.pop();
      Client& c = clients_[d.second];
      if (c.state != State::kReady) continue;
      const std::int64_t late_ns = now - d.first;
      counters_.send_late_us_max =
          std::max<std::uint64_t>(counters_.send_late_us_max, late_ns / 1000);
      send_presence(c, now);
      // A jittered schedule around the rate; a generator that fell behind
      // by more than a period drops the backlog instead of bursting it.
      const std::int64_t base = std::max(d.first, now - period_ns_);
      const auto gap =
          static_cast<std::int64_t>((0.5 + rng_.unit()) * static_cast<double>(period_ns_));
      heap_.push({base + gap, d.second});
    }
  }

  void send_presence(Client& c, std::int64_t now) {
    if (c.out.size() - c.out_off > kUnsentBytesMax) {
      ++counters_.updates_skipped;
      return;
    }
    char payload[128];
    const double x = static_cast<double>(rng_.next() % 10001) / 10000.0;
    const int n = std::snprintf(payload, sizeof payload,
                                R"({"type":"presence","x":%.4f,"status_text":"t%lld"})", x,
                                static_cast<long long>(wall_us()));
    send_text(c, std::string_view(payload, static_cast<std::size_t>(n)));
    ++counters_.updates_sent_total;
    if (now >= shared_.window_start_ns.load(std::memory_order_relaxed) &&
        now < shared_.window_end_ns.load(std::memory_order_relaxed)) {
      ++counters_.updates_sent;
    }
  }

  Shared& shared_;
  const Settings& s_;
  FastRandom rng_;
  const bool details_;  // presence: parse member lists and keep models
  int epoll_ = -1;
  std::string host_port_;
  std::vector<Client> clients_;
  std::vector<std::uint8_t> rbuf_;
  std::vector<Cached> cache_;
  ServerMessageParser parser_;
  ServerMessage scratch_;
  Counters counters_;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> heap_;
  std::vector<Due> retry_;
  std::int64_t period_ns_ = 0;
  std::int64_t t0_ns_ = 0;
  double ramp_per_ns_ = 0;
  std::uint32_t next_open_ = 0;
  std::uint32_t inflight_ = 0;
  std::uint64_t open_fds_ = 0;
  std::int64_t close_deadline_ns_ = 0;
  bool close_reported_ = false;
  std::int64_t next_settle_ns_ = 0;
  std::int64_t recv_ns_ = 0;
  std::int64_t recv_wall_us_ = 0;
};

}  // namespace rc::load
