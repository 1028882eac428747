#pragma once
// Small system helpers shared by the load tools: file-descriptor limits,
// loopback-only addresses, clocks, and another process's CPU time and memory
// read from /proc. Header-only (see ws_client.h for why).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

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
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                  &stime) != 2) {
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

}  // namespace rc::load
