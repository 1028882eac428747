#pragma once
// Small system helpers shared by the load tools: file-descriptor limits,
// loopback-only addresses, clocks, and another process's CPU time and memory
// read from /proc. Header-only (see ws_client.h for why).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace rc::load {

inline std::int64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// CLOCK_REALTIME in µs: the clock the send stamps use, so that a receiver on
// the same machine can subtract them.
inline std::int64_t wall_us() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

// Raises the soft RLIMIT_NOFILE to the hard limit. Returns the soft limit now
// in force.
inline std::uint64_t raise_nofile_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

// An IPv4 address in 127.0.0.0/8 (network byte order in out.s_addr). The load
// tools refuse every other target: they are for loopback measurements only.
inline Status parse_loopback(const std::string& text, in_addr& out) {
  if (inet_pton(AF_INET, text.c_str(), &out) != 1) {
    return Status::error("not an IPv4 address: " + text);
  }
  if ((ntohl(out.s_addr) >> 24) != 127) {
    return Status::error("only loopback targets (127.0.0.0/8) are allowed: " + text);
  }
  return Status::ok();
}

// Starts a non-blocking TCP connect from source (port chosen by the kernel) to
// target:port with TCP_NODELAY, and adds the socket to epoll_fd for reading and
// writing with data.u32 = tag. Returns the socket, or -1 (nothing left open)
// when any step fails; the connect may still fail later, seen by epoll.
inline int start_tcp_connect(const in_addr& source, const in_addr& target, std::uint16_t port,
                             int epoll_fd, std::uint32_t tag) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  // Choose the source port at connect() time, per destination, instead of
  // reserving one per source address at bind() time.
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr = source;
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr = target;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u32 = tag;
  if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS) ||
      epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Whether the connect that start_tcp_connect began failed, once epoll reported
// events ev for its socket: a pending socket error, or EPOLLERR/EPOLLHUP.
inline bool tcp_connect_failed(int fd, std::uint32_t ev) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err != 0 || (ev & (EPOLLERR | EPOLLHUP)) != 0;
}

// utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and
// 15); -1 if it cannot be read.
inline std::int64_t process_cpu_ticks(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return -1;
  char buf[1024];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // The command name (field 2) may hold spaces: count fields after its ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return -1;
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
      2) {
    return -1;
  }
  return static_cast<std::int64_t>(utime + stime);
}

// VmRSS of a process in KiB; -1 if it cannot be read.
inline std::int64_t process_rss_kib(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return -1;
  char line[256];
  std::int64_t kib = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    long long v = 0;
    if (std::sscanf(line, "VmRSS: %lld kB", &v) == 1) {
      kib = v;
      break;
    }
  }
  std::fclose(f);
  return kib;
}

// Packets the kernel dropped because a CPU's input backlog was full (the
// second column of /proc/net/softnet_stat, summed over CPUs). Over loopback
// that is where a burst of sends larger than net.core.netdev_max_backlog is
// lost, and TCP's loss recovery then adds hundreds of milliseconds.
inline std::int64_t softnet_drops() {
  FILE* f = std::fopen("/proc/net/softnet_stat", "r");
  if (f == nullptr) return -1;
  std::int64_t sum = 0;
  unsigned long long processed = 0, dropped = 0;
  char rest[512];
  while (std::fscanf(f, "%llx %llx", &processed, &dropped) == 2) {
    sum += static_cast<std::int64_t>(dropped);
    if (std::fgets(rest, sizeof rest, f) == nullptr) break;
  }
  std::fclose(f);
  return sum;
}

// TCP segments retransmitted by the whole machine (Tcp RetransSegs of /proc/net/snmp).
inline std::int64_t tcp_retransmits() {
  FILE* f = std::fopen("/proc/net/snmp", "r");
  if (f == nullptr) return -1;
  char names[1024], values[1024];
  std::int64_t out = -1;
  while (std::fgets(names, sizeof names, f) != nullptr) {
    if (std::strncmp(names, "Tcp: ", 5) != 0) continue;
    if (std::fgets(values, sizeof values, f) == nullptr) break;
    char* save_n = nullptr;
    char* save_v = nullptr;
    char* n = strtok_r(names, " \n", &save_n);
    char* v = strtok_r(values, " \n", &save_v);
    while (n != nullptr && v != nullptr) {
      if (std::strcmp(n, "RetransSegs") == 0) out = std::strtoll(v, nullptr, 10);
      n = strtok_r(nullptr, " \n", &save_n);
      v = strtok_r(nullptr, " \n", &save_v);
    }
    break;
  }
  std::fclose(f);
  return out;
}

// GET path from addr:port over a blocking socket (timeout_ms per step) and
// returns the whole answer, head included; empty on any failure. For a few
// scrapes per second from the main thread, not for the hot path.
inline std::string http_get(const in_addr& addr, std::uint16_t port, const char* path,
                            int timeout_ms) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr = addr;
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0) {
    const std::string req =
        std::string("GET ") + path + " HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[16384];
      constexpr std::size_t kAnswerBytesMax = 4 << 20;
      ssize_t n;
      while (answer.size() < kAnswerBytesMax && (n = recv(fd, buf, sizeof buf, 0)) > 0) {
        answer.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  close(fd);
  return answer;
}

// The line of text that starts at pos, without its '\n'; moves pos past it.
// Loop with `while (pos < text.size())`.
inline std::string_view next_line(std::string_view text, std::size_t& pos) {
  std::size_t eol = text.find('\n', pos);
  if (eol == std::string_view::npos) eol = text.size();
  const std::string_view line = text.substr(pos, eol - pos);
  pos = eol + 1;
  return line;
}

// The integer that starts a sample's value text (leading blanks skipped);
// false when there is none.
inline bool parse_sample_int(std::string_view text, std::int64_t& out) {
  const std::string value(text);
  char* end = nullptr;
  const long long v = std::strtoll(value.c_str(), &end, 10);
  if (end == value.c_str()) return false;
  out = v;
  return true;
}

// The sum of every sample of a Prometheus counter family in a /metrics text
// (`name 12` or `name{shard="0"} 12` lines); -1 when there is none.
inline std::int64_t prometheus_sum(std::string_view text, std::string_view name) {
  std::int64_t sum = -1;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::string_view line = next_line(text, pos);
    if (line.size() <= name.size() || line.substr(0, name.size()) != name) continue;
    const char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    std::int64_t v = 0;
    if (!parse_sample_int(line.substr(line.rfind(' ') + 1), v)) continue;
    sum = (sum < 0 ? 0 : sum) + v;
  }
  return sum;
}

}  // namespace rc::load
