#pragma once
// The process log: lines on stderr, written by one writer thread so that a
// shard thread never waits for a terminal, a pipe or a disk.
//
// Contract
// - Any thread may log at any time. While the writer runs (between start()
//   and stop()), write() formats the line and pushes it into a bounded
//   lock-free queue (kQueueLines); it never blocks, and its only allocation
//   is the queued line itself. When the queue is full the line is dropped and
//   counted (dropped()); the writer then logs "N log lines dropped".
// - Before start() and after stop(), write() goes straight to stderr, one
//   write(2) per line: start-up and shutdown messages are not lost.
// - start() and stop() are called by one thread (main), in pairs. stop()
//   writes every line queued before it returns. Call stop() before the
//   process exits, or queued lines may be lost.
// - Line format: "2026-11-22T22:09:39.123Z INFO shard 1: text\n" (UTC time
//   in milliseconds, level, this thread's name if it has one, the text).
//
// Use the macros: RC_INFO("listening on {}:{}", bind, port). The arguments are
// formatted only when the level is enabled.

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rc {

enum class LogLevel : std::uint8_t { kDebug, kInfo, kWarn, kError };

namespace log {

// Lines that may wait for the writer thread before new ones are dropped.
inline constexpr std::size_t kQueueLines = 8192;
// Longest thread name kept for the prefix; longer names are cut.
inline constexpr std::size_t kThreadNameBytesMax = 31;

// Lines below `level` are skipped. Any thread; takes effect at once.
void set_level(LogLevel level);
LogLevel level();
bool enabled(LogLevel level);

// "DEBUG", "INFO", "WARN" or "ERROR".
std::string_view level_name(LogLevel level);

// Starts the writer thread. Must not already be running.
void start();
// Writes every queued line, then stops the writer. No-op when not running.
void stop();

// Queues (or, when the writer is not running, writes) one line made of the
// prefix and `text`; a trailing newline is added when `text` has none.
void write(LogLevel level, std::string_view text);

// Lines dropped because the queue was full, since the process started.
std::uint64_t dropped();

// Names the calling thread in the prefix ("shard 1", "persist", "main").
// An empty name leaves the name out.
void set_thread_name(std::string_view name);

}  // namespace log
}  // namespace rc

#define RC_LOG(level, ...)                                 \
  do {                                                     \
    if (::rc::log::enabled(level)) {                       \
      ::rc::log::write(level, ::fmt::format(__VA_ARGS__)); \
    }                                                      \
  } while (0)
#define RC_DEBUG(...) RC_LOG(::rc::LogLevel::kDebug, __VA_ARGS__)
#define RC_INFO(...) RC_LOG(::rc::LogLevel::kInfo, __VA_ARGS__)
#define RC_WARN(...) RC_LOG(::rc::LogLevel::kWarn, __VA_ARGS__)
#define RC_ERROR(...) RC_LOG(::rc::LogLevel::kError, __VA_ARGS__)
