#pragma once
// The transport half of a rollcall-load worker: one epoll instance and the
// non-blocking sockets of its share of the client sessions. It opens them at
// the ramp rate (with bounded retries), does the TLS handshake with --tls
// (tools/load/tls_client.h), the WebSocket upgrade, writes queued bytes,
// reads and splits server frames, answers pings and close frames, and hands
// every whole data message to on_message(), which the Worker (worker.h)
// implements: what the messages mean is not this file's business.
//
// Threading: created and filled (add_client) by the main thread before the
// worker's thread starts; from then on only that thread touches it, apart
// from Shared's atomics.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "protocol/ws.h"
#include "tools/load/client.h"
#include "tools/load/net.h"
#include "tools/load/shared.h"
#include "tools/load/ws_client.h"

namespace rc::load {

class SessionIo {
 public:
  SessionIo(Shared& shared, std::uint32_t index)
      : shared_(shared),
        s_(shared.settings),
        rng_{0x9E3779B97F4A7C15ull * (index + 1) ^ static_cast<std::uint64_t>(mono_ns())},
        rbuf_(kReadBytes + kPadBytes) {
    char buf[96];
    char ip[INET_ADDRSTRLEN] = "";
    inet_ntop(AF_INET, &s_.target, ip, sizeof ip);
    std::snprintf(buf, sizeof buf, "%s:%u", ip, static_cast<unsigned>(s_.port));
    host_port_ = buf;
    if (s_.tls) tls_config_ = std::make_unique<TlsClientConfig>();
  }
  virtual ~SessionIo() {
    for (Client& c : clients_) {
      c.tls.reset();
      if (c.fd >= 0) ::close(c.fd);
    }
    if (epoll_ >= 0) ::close(epoll_);
  }
  SessionIo(const SessionIo&) = delete;
  SessionIo& operator=(const SessionIo&) = delete;

  void reserve(std::size_t n) { clients_.reserve(n); }
  Client& add_client(std::uint32_t room, std::uint32_t member, std::uint32_t source) {
    Client& c = clients_.emplace_back();
    c.room = room;
    c.member = member;
    c.source = source;
    return c;
  }

  const Counters& counters() const { return counters_; }

 protected:
  // A whole data message of an open session: data[len..capacity) is readable.
  virtual void on_message(Client& c, const std::uint8_t* data, std::size_t len,
                          std::size_t capacity) = 0;

  // Before the loop: the epoll instance and the ramp. False when epoll fails.
  bool start_io() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) return false;
    if (tls_config_ != nullptr && !tls_config_->ok()) return false;
    t0_ns_ = mono_ns();
    ramp_per_ns_ = s_.ramp_per_s / 1e9 * static_cast<double>(clients_.size()) /
                   std::max<double>(1.0, static_cast<double>(s_.sessions));
    return true;
  }

  // Waits up to wait_ns for events and handles them.
  void poll_once(std::int64_t wait_ns) {
    timespec ts{0, static_cast<long>(wait_ns)};
    const int n = epoll_pwait2(epoll_, events_, kEventsMax, &ts, nullptr);
    if (n <= 0) return;
    recv_ns_ = mono_ns();
    recv_wall_us_ = wall_us();
    for (int i = 0; i < n; ++i) on_event(clients_[events_[i].data.u32], events_[i].events);
  }

  // ---- connecting

  void set_state(Client& c, State next) {
    if (opening(c.state) && !opening(next)) --opening_;
    if (!opening(c.state) && opening(next)) ++opening_;
    c.state = next;
  }

  void open_more(std::int64_t now) {
    for (std::size_t i = 0; i < retry_.size() && opening_ < kOpeningMax;) {
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
           opening_ < kOpeningMax) {
      start_connect(clients_[next_open_], next_open_, now);
      ++next_open_;
    }
  }

  void start_connect(Client& c, std::uint32_t idx, std::int64_t now) {
    ++c.attempts;
    const int fd = start_tcp_connect(s_.source_addrs[c.source % s_.source_addrs.size()], s_.target,
                                     s_.port, epoll_, idx);
    if (fd < 0) {
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
    if (tcp_connect_failed(c.fd, ev)) {
      ++counters_.connect_errors;
      close_fd(c);
      retry_or_fail(c, idx, mono_ns());
      return;
    }
    if (tls_config_ == nullptr) {
      start_upgrade(c);
      return;
    }
    c.tls = std::make_unique<TlsConn>(*tls_config_, c.fd);
    c.tls_start_ns = mono_ns();
    set_state(c, State::kTlsHandshake);
    drive_handshake(c, idx);
  }

  // One step of the client's TLS handshake; on success the upgrade follows.
  // A failed handshake is retried like a failed connect.
  void drive_handshake(Client& c, std::uint32_t idx) {
    switch (c.tls->handshake()) {
      case TlsConn::Io::kOk: {
        counters_.tls.done(*c.tls, c.tls_start_ns);
        start_upgrade(c);
        return;
      }
      case TlsConn::Io::kWantRead:
        want_write(c, false);
        return;
      case TlsConn::Io::kWantWrite:
        want_write(c, true);
        return;
      default:
        counters_.tls.failed(*c.tls);
        close_fd(c);
        retry_or_fail(c, idx, mono_ns());
        return;
    }
  }

  void start_upgrade(Client& c) {
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
    c.tls.reset();  // before the socket it writes to
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

  // Writes what c.out holds, through TLS with --tls; arms EPOLLOUT for the rest.
  void flush(Client& c) {
    const auto* data = reinterpret_cast<const std::uint8_t*>(c.out.data());
    switch (flush_bytes(c.fd, c.tls.get(), data, c.out.size(), c.out_off)) {
      case Flush::kDone:
        break;
      case Flush::kBlocked:
        want_write(c, true);
        return;
      case Flush::kFailed:
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
    const auto idx = static_cast<std::uint32_t>(&c - clients_.data());
    if (c.state == State::kConnecting) {
      on_connected(c, idx, ev);
      return;
    }
    if (c.state == State::kTlsHandshake) {
      drive_handshake(c, idx);
      return;
    }
    if ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
      if (c.tls != nullptr) {
        on_readable_tls(c);
      } else {
        on_readable(c);
      }
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

  // Decrypts whole records into the receive buffer while a record still
  // fits, then handles the plaintext as on_readable does. What is left stays
  // in the socket, where epoll (level-triggered) announces it again.
  void on_readable_tls(Client& c) {
    std::size_t got_total = 0;
    TlsConn::Io io = TlsConn::Io::kOk;
    while (io == TlsConn::Io::kOk && kReadBytes - got_total >= kTlsRecordPlainBytes) {
      std::size_t got = 0;
      io = c.tls->read(rbuf_.data() + got_total, kReadBytes - got_total, got);
      got_total += got;
    }
    if (got_total > 0) {
      if (in_window()) counters_.bytes += got_total;
      on_bytes(c, rbuf_.data(), got_total);
      if (c.fd < 0) return;
    }
    if (io == TlsConn::Io::kClosed) {
      if (!c.close_sent) ++counters_.eof_closes;
      end(c);
    } else if (io == TlsConn::Io::kError) {
      ++counters_.socket_errors;
      end(c);
    }
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
      case kClose:
        on_close_frame(c, f);
        return;
      default:
        break;
    }
    ++counters_.protocol_errors;
    end(c);
  }

  void on_close_frame(Client& c, const ServerFrame& f) {
    const std::uint16_t code = f.payload_bytes >= 2
                                   ? static_cast<std::uint16_t>((f.payload[0] << 8) | f.payload[1])
                                   : ws::close_code::kNoStatus;
    if (!c.close_sent) {
      ++counters_.server_closes;
      ++counters_.close_codes[code];
      c.close_sent = true;
      append_masked_frame(c.out, kClose,
                          code == ws::close_code::kNoStatus ? std::string() : close_payload(code),
                          static_cast<std::uint32_t>(rng_.next()));
      flush(c);
    }
    if (c.fd >= 0) end(c);
  }

  bool in_window() const {
    return recv_ns_ >= shared_.window_start_ns.load(std::memory_order_relaxed) &&
           recv_ns_ < shared_.window_end_ns.load(std::memory_order_relaxed);
  }

  Shared& shared_;
  const Settings& s_;
  FastRandom rng_;
  std::vector<Client> clients_;
  Counters counters_;
  std::uint64_t open_fds_ = 0;
  std::int64_t recv_ns_ = 0;       // when the events being handled arrived (CLOCK_MONOTONIC)
  std::int64_t recv_wall_us_ = 0;  // the same on CLOCK_REALTIME, for send stamps

 private:
  int epoll_ = -1;
  epoll_event events_[kEventsMax];
  std::string host_port_;
  std::unique_ptr<TlsClientConfig> tls_config_;
  std::vector<std::uint8_t> rbuf_;
  std::vector<std::pair<std::int64_t, std::uint32_t>> retry_;
  std::int64_t t0_ns_ = 0;
  double ramp_per_ns_ = 0;
  std::uint32_t next_open_ = 0;
  std::uint32_t opening_ = 0;
};

}  // namespace rc::load
