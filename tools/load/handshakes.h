#pragma once
// rollcall-load handshakes: how fast the server takes new connections. Each
// connection does TCP connect, the full TLS handshake with --tls (no
// resumption: the server has none), `GET /healthz` with `Connection: close`,
// reads the whole answer and closes; `concurrency` of them are under way at
// any time until `connections` have been tried. Reports connections per
// second, latency from connect() to the answer's last byte, the TLS
// handshake's share, and the server's CPU per connection.
//
// One HandshakeRunner per thread, each on its own epoll instance with its
// share of the connections and of the concurrency; no retries (a failure is
// counted by cause). Threading: a runner is touched only by its thread until
// join(); the main thread then reads its results.

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tools/load/client.h"
#include "tools/load/histogram.h"
#include "tools/load/net.h"
#include "tools/load/report.h"
#include "tools/load/shared.h"
#include "tools/load/tls_client.h"
#include "tools/load/ws_client.h"

namespace rc::load {

// A connection that has not finished after this long is given up (counted).
inline constexpr std::int64_t kHandshakeTimeoutNs = 10'000'000'000;
// The largest /healthz answer read; a longer one is an error.
inline constexpr std::size_t kHealthzBytesMax = 64 * 1024;

// The HTTP answer in `bytes`: complete when the head and Content-Length
// bytes of body are there. status 0 while the status line is incomplete or
// malformed. Pure.
struct HttpAnswer {
  bool complete = false;
  int status = 0;
};
inline HttpAnswer parse_http_answer(std::string_view bytes) {
  HttpAnswer a;
  const std::size_t end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos) return a;
  if (bytes.size() < 12 || bytes.substr(0, 9) != "HTTP/1.1 ") return a;
  int status = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (bytes[i] < '0' || bytes[i] > '9') return a;
    status = status * 10 + (bytes[i] - '0');
  }
  a.status = status;
  std::size_t length = 0;
  std::string_view head = bytes.substr(0, end + 2);
  while (!head.empty()) {
    const std::size_t eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos ||
        !detail::iequals(line.substr(0, colon), "content-length"))
      continue;
    const std::string value(detail::trim(line.substr(colon + 1)));
    length = static_cast<std::size_t>(std::strtoull(value.c_str(), nullptr, 10));
  }
  a.complete = bytes.size() >= end + 4 + length;
  return a;
}

struct HandshakeResults {
  std::uint64_t started = 0;
  std::uint64_t completed = 0;  // a whole 200 answer
  std::uint64_t connect_errors = 0;
  std::uint64_t http_errors = 0;  // not 200, malformed, or closed before the whole answer
  std::uint64_t timeouts = 0;
  std::map<int, std::uint64_t> statuses;
  Histogram total_us;  // connect() to the answer's last byte
  TlsTally tls;        // with --tls

  void merge(const HandshakeResults& o) {
    started += o.started;
    completed += o.completed;
    connect_errors += o.connect_errors;
    http_errors += o.http_errors;
    timeouts += o.timeouts;
    for (const auto& [k, v] : o.statuses) statuses[k] += v;
    total_us.merge(o.total_us);
    tls.merge(o.tls);
  }
};

class HandshakeRunner {
 public:
  HandshakeRunner(const Settings& s, std::uint64_t connections, std::uint32_t concurrency)
      : s_(s), total_(connections), slots_(std::max<std::uint32_t>(concurrency, 1)) {
    if (s.tls) tls_ = std::make_unique<TlsClientConfig>();
    char ip[INET_ADDRSTRLEN] = "";
    inet_ntop(AF_INET, &s.target, ip, sizeof ip);
    request_ = fmt::format("GET /healthz HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\r\n", ip,
                           s.port);
  }
  ~HandshakeRunner() {
    for (Conn& c : slots_) finish(c);
    if (epoll_ >= 0) ::close(epoll_);
  }
  HandshakeRunner(const HandshakeRunner&) = delete;
  HandshakeRunner& operator=(const HandshakeRunner&) = delete;

  const HandshakeResults& results() const { return r_; }

  // Until every connection was tried and ended, or deadline_ns (monotonic).
  void run(std::int64_t deadline_ns) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0 || (tls_ != nullptr && !tls_->ok())) return;
    epoll_event events[kEventsMax];
    while (mono_ns() < deadline_ns) {
      const std::int64_t now = mono_ns();
      std::uint32_t busy = 0;
      for (std::uint32_t i = 0; i < slots_.size(); ++i) {
        Conn& c = slots_[i];
        if (c.fd >= 0 && now - c.start_ns > kHandshakeTimeoutNs) {
          ++r_.timeouts;
          finish(c);
        }
        if (c.fd < 0 && r_.started < total_) start(c, i);
        busy += c.fd >= 0 ? 1 : 0;
      }
      if (busy == 0 && r_.started >= total_) return;
      const int n = epoll_wait(epoll_, events, kEventsMax, 5);
      for (int i = 0; i < n; ++i) on_event(slots_[events[i].data.u32], events[i].events);
    }
  }

 private:
  enum class Step : std::uint8_t { kConnecting, kTls, kRequest, kAnswer };
  struct Conn {
    int fd = -1;
    Step step = Step::kConnecting;
    std::int64_t start_ns = 0;
    std::int64_t tls_start_ns = 0;
    std::unique_ptr<TlsConn> tls;
    std::size_t out_off = 0;
    std::string in;
  };

  void start(Conn& c, std::uint32_t slot) {
    ++r_.started;
    c.start_ns = mono_ns();
    const int fd = start_tcp_connect(s_.source_addrs[r_.started % s_.source_addrs.size()],
                                     s_.target, s_.port, epoll_, slot);
    if (fd < 0) {
      ++r_.connect_errors;
      return;
    }
    c.fd = fd;
    c.step = Step::kConnecting;
    c.out_off = 0;
    c.in.clear();
  }

  void finish(Conn& c) {
    if (c.fd < 0) return;
    c.tls.reset();
    ::close(c.fd);
    c.fd = -1;
  }

  void interest(Conn& c, bool out) {
    epoll_event ev{};
    ev.events = EPOLLIN | (out ? EPOLLOUT : 0u);
    ev.data.u32 = static_cast<std::uint32_t>(&c - slots_.data());
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void on_event(Conn& c, std::uint32_t ev) {
    if (c.fd < 0) return;
    if (c.step == Step::kConnecting) {
      if (tcp_connect_failed(c.fd, ev)) {
        ++r_.connect_errors;
        finish(c);
        return;
      }
      c.step = tls_ != nullptr ? Step::kTls : Step::kRequest;
      if (tls_ != nullptr) {
        c.tls = std::make_unique<TlsConn>(*tls_, c.fd);
        c.tls_start_ns = mono_ns();
      }
    }
    if (c.step == Step::kTls && !handshake(c)) return;
    if (c.step == Step::kRequest && !send_request(c)) return;
    if (c.step == Step::kAnswer) read_answer(c);
  }

  // False while the handshake is not done (or when it failed).
  bool handshake(Conn& c) {
    const TlsConn::Io io = c.tls->handshake();
    if (io == TlsConn::Io::kOk) {
      r_.tls.done(*c.tls, c.tls_start_ns);
      c.step = Step::kRequest;
      return true;
    }
    if (io == TlsConn::Io::kWantRead || io == TlsConn::Io::kWantWrite) {
      interest(c, io == TlsConn::Io::kWantWrite);
      return false;
    }
    r_.tls.failed(*c.tls);
    finish(c);
    return false;
  }

  bool send_request(Conn& c) {
    const auto* data = reinterpret_cast<const std::uint8_t*>(request_.data());
    switch (flush_bytes(c.fd, c.tls.get(), data, request_.size(), c.out_off)) {
      case Flush::kDone:
        break;
      case Flush::kBlocked:
        interest(c, true);
        return false;
      case Flush::kFailed:
        ++r_.http_errors;
        finish(c);
        return false;
    }
    interest(c, false);
    c.step = Step::kAnswer;
    return true;
  }

  void read_answer(Conn& c) {
    char buf[kTlsRecordPlainBytes];
    bool eof = false;
    while (c.in.size() < kHealthzBytesMax) {
      std::size_t got = 0;
      if (c.tls != nullptr) {
        const TlsConn::Io io = c.tls->read(reinterpret_cast<std::uint8_t*>(buf), sizeof buf, got);
        c.in.append(buf, got);
        if (io == TlsConn::Io::kOk) continue;
        eof = io == TlsConn::Io::kClosed || io == TlsConn::Io::kError;
        break;
      }
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      eof = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
      break;
    }
    const HttpAnswer a = parse_http_answer(c.in);
    if (a.complete) {
      ++r_.statuses[a.status];
      if (a.status == 200) {
        ++r_.completed;
        r_.total_us.add(static_cast<std::uint64_t>((mono_ns() - c.start_ns) / 1000));
      } else {
        ++r_.http_errors;
      }
      finish(c);
    } else if (eof || c.in.size() >= kHealthzBytesMax) {
      ++r_.http_errors;
      finish(c);
    }
  }

  const Settings& s_;
  const std::uint64_t total_;
  std::vector<Conn> slots_;
  std::unique_ptr<TlsClientConfig> tls_;
  std::string request_;
  int epoll_ = -1;
  HandshakeResults r_;
};

// What the main thread measured around the runners.
struct HandshakeRun {
  double seconds = 0;
  double server_cpu_s = -1;  // -1 without --server-pid
  double load_cpu_percent = 0;
};

inline std::string handshakes_json(const Settings& s, const HandshakeResults& r,
                                   const HandshakeRun& run) {
  std::string j = "{";
  j += fmt::format(
      "\"mode\":\"handshakes\",\"target\":\"{}:{}\",\"tls\":{},\"connections\":{},"
      "\"concurrency\":{},\"threads\":{},\"sources\":{},",
      s.host, s.port, s.tls, s.connections, s.concurrency, s.threads, s.sources);
  j += fmt::format(
      "\"started\":{},\"completed\":{},\"elapsed_s\":{:.3f},\"handshakes_per_s\":{:.1f},"
      "\"failed\":{{\"connect\":{},\"tls\":{},\"http\":{},\"timeout\":{}}},\"http_statuses\":{},",
      r.started, r.completed, run.seconds, per_s(r.completed, run.seconds), r.connect_errors,
      r.tls.errors, r.http_errors, r.timeouts, json_map(r.statuses));
  j += "\"latency_ms\":" + latency_json(r.total_us) + ",";
  if (s.tls) {
    j += fmt::format(
        "\"tls_handshake_ms\":{},\"tls_suite\":\"{}\",\"server_key\":\"{}\",\"tls_first_error\":"
        "\"{}\",",
        latency_json(r.tls.handshake_us), r.tls.suite, r.tls.peer_key, r.tls.first_error);
  } else {
    j += "\"tls_handshake_ms\":null,\"tls_suite\":null,\"server_key\":null,";
  }
  if (run.server_cpu_s >= 0) {
    j += fmt::format(
        "\"server\":{{\"pid\":{},\"cpu_percent\":{:.2f},\"cpu_ms_per_connection\":{:.4f}}},",
        s.server_pid, 100.0 * run.server_cpu_s / run.seconds,
        r.completed > 0 ? 1000.0 * run.server_cpu_s / static_cast<double>(r.completed) : 0.0);
  } else {
    j += "\"server\":null,";
  }
  j += fmt::format("\"load_cpu_percent\":{:.2f},\"loadavg_1m\":{:.2f}}}", run.load_cpu_percent,
                   loadavg_1m());
  return j;
}

inline void handshakes_human(const Settings& s, const HandshakeResults& r,
                             const HandshakeRun& run) {
  std::fprintf(stderr,
               "rollcall-load handshakes%s: %llu of %llu completed in %.2f s: %.1f/s; latency ms "
               "p50 %.2f p99 %.2f max %.2f\n",
               s.tls ? " (TLS)" : "", static_cast<unsigned long long>(r.completed),
               static_cast<unsigned long long>(r.started), run.seconds,
               per_s(r.completed, run.seconds), ms(r.total_us.percentile(0.5)),
               ms(r.total_us.percentile(0.99)), ms(r.total_us.max()));
  if (s.tls) {
    std::fprintf(stderr, "  tls: %s, server key %s, handshake p50 %.2f ms p99 %.2f ms%s%s\n",
                 r.tls.suite.c_str(), r.tls.peer_key.c_str(),
                 ms(r.tls.handshake_us.percentile(0.5)), ms(r.tls.handshake_us.percentile(0.99)),
                 r.tls.first_error.empty() ? "" : "; first error: ", r.tls.first_error.c_str());
  }
  std::fprintf(
      stderr,
      "  failed: connect %llu, tls %llu, http %llu, timeout %llu; server cpu %.1f%%, "
      "load cpu %.1f%%\n",
      static_cast<unsigned long long>(r.connect_errors),
      static_cast<unsigned long long>(r.tls.errors), static_cast<unsigned long long>(r.http_errors),
      static_cast<unsigned long long>(r.timeouts),
      run.server_cpu_s >= 0 ? 100.0 * run.server_cpu_s / run.seconds : -1.0, run.load_cpu_percent);
}

// Runs the handshakes mode: JSON on stdout, summary on stderr. Returns the
// process exit status (0 when at least one connection completed).
inline int run_handshakes(const Settings& s) {
  std::vector<std::unique_ptr<HandshakeRunner>> runners;
  for (std::uint32_t i = 0; i < s.threads; ++i) {
    const std::uint64_t n = s.connections / s.threads + (i < s.connections % s.threads ? 1 : 0);
    const std::uint32_t c = s.concurrency / s.threads + (i < s.concurrency % s.threads ? 1 : 0);
    runners.push_back(std::make_unique<HandshakeRunner>(s, n, c));
  }
  const int pid = s.server_pid;
  const std::int64_t cpu0 = pid > 0 ? process_cpu_ticks(pid) : -1;
  const std::int64_t self0 = process_cpu_ticks(getpid());
  const std::int64_t t0 = mono_ns();
  const std::int64_t deadline = t0 + static_cast<std::int64_t>(s.connect_timeout_s * 1e9);
  std::vector<std::thread> threads;
  for (auto& r : runners) threads.emplace_back([&r, deadline] { r->run(deadline); });
  for (auto& t : threads) t.join();
  HandshakeRun run;
  run.seconds = static_cast<double>(mono_ns() - t0) / 1e9;
  const std::int64_t cpu1 = pid > 0 ? process_cpu_ticks(pid) : -1;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  if (cpu0 >= 0 && cpu1 >= 0) run.server_cpu_s = static_cast<double>(cpu1 - cpu0) / hz;
  run.load_cpu_percent =
      100.0 * static_cast<double>(process_cpu_ticks(getpid()) - self0) / hz / run.seconds;
  HandshakeResults r;
  for (auto& x : runners) r.merge(x->results());
  std::printf("%s\n", handshakes_json(s, r, run).c_str());
  std::fflush(stdout);
  handshakes_human(s, r, run);
  return r.completed > 0 ? 0 : 1;
}

}  // namespace rc::load
