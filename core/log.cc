#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <iterator>
#include <string>
#include <thread>

#include "core/assert.h"
#include "core/mpsc_queue.h"

namespace rc::log {
namespace {

// The writer gathers lines into one buffer and hands the kernel this much at
// most per write(2): fewer system calls when a burst arrives.
constexpr std::size_t kBatchBytes = 64 * 1024;
constexpr int kOutputFd = STDERR_FILENO;

struct State {
  std::atomic<LogLevel> level{LogLevel::kInfo};
  // True between start() and stop(): write() queues instead of writing.
  std::atomic<bool> running{false};
  // Callers of write() between their look at `running` and the end of their
  // push; stop() waits for zero so that no line lands in a queue nobody reads.
  std::atomic<std::uint32_t> in_flight{0};
  // Bumped after every push; the idle writer sleeps on it (futex), so a
  // producer pays for a wake-up only when the writer is actually asleep.
  std::atomic<std::uint32_t> wake{0};
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> dropped{0};
  MpscQueue<std::string, kQueueLines> queue;
  std::thread writer;
};

// Deliberately never destroyed: threads that log during static destruction,
// or a writer still running at exit, must not touch a dead object (and a
// joinable std::thread destroyed at exit would terminate the process).
State& state() {
  static State* const s = new State;
  return *s;
}

thread_local char t_name[kThreadNameBytesMax];
thread_local std::size_t t_name_bytes = 0;

void write_all(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(kOutputFd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // stderr is gone; there is nowhere left to report that
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Builds "2026-11-22T22:09:39.123Z INFO name: text\n" in one allocation.
std::string make_line(LogLevel level, std::string_view text) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  const auto ms = duration_cast<milliseconds>(since_epoch).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);

  const std::string_view name(t_name, t_name_bytes);
  const std::string_view level_text = level_name(level);
  std::string line;
  line.reserve(25 + level_text.size() + 1 + name.size() + 2 + text.size() + 1);
  fmt::format_to(std::back_inserter(line), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 static_cast<int>(ms % 1000), level_text);
  if (!name.empty()) {
    line.append(name);
    line.append(": ");
  }
  line.append(text);
  if (text.empty() || text.back() != '\n') line.push_back('\n');
  return line;
}

// Appends the drop notice when lines were dropped since the last notice.
void note_drops(std::string& batch, std::uint64_t& reported) {
  const std::uint64_t total = state().dropped.load(std::memory_order_relaxed);
  if (total == reported) return;
  batch.append(make_line(LogLevel::kWarn, fmt::format("{} log lines dropped", total - reported)));
  reported = total;
}

void writer_main() {
  State& s = state();
  set_thread_name("log");
  std::string batch;
  batch.reserve(kBatchBytes);
  std::string line;
  std::uint64_t reported = s.dropped.load(std::memory_order_relaxed);
  for (;;) {
    // Read both before draining: a push that bumped `wake` after this load
    // makes wait() return at once, and `stopping` is only set once every
    // push has finished, so the final drain sees all of them.
    const std::uint32_t seen = s.wake.load(std::memory_order_acquire);
    const bool stopping = s.stopping.load(std::memory_order_acquire);
    while (s.queue.try_pop(line)) {
      batch.append(line);
      if (batch.size() >= kBatchBytes) {
        write_all(batch);
        batch.clear();
      }
    }
    note_drops(batch, reported);
    if (!batch.empty()) {
      write_all(batch);
      batch.clear();
    }
    if (stopping) return;
    s.wake.wait(seen, std::memory_order_acquire);
  }
}

}  // namespace

void set_level(LogLevel level) {
  state().level.store(level, std::memory_order_relaxed);
}

LogLevel level() {
  return state().level.load(std::memory_order_relaxed);
}

bool enabled(LogLevel level) {
  return static_cast<std::uint8_t>(level) >=
         static_cast<std::uint8_t>(state().level.load(std::memory_order_relaxed));
}

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarn:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

void start() {
  State& s = state();
  RC_ASSERT(!s.running.load() && !s.writer.joinable());
  s.stopping.store(false, std::memory_order_relaxed);
  s.writer = std::thread(writer_main);
  s.running.store(true);
}

void stop() {
  State& s = state();
  if (!s.running.exchange(false)) return;
  // Pairs with write(): it raises in_flight and then reads running; we clear
  // running and then read in_flight (all sequentially consistent). Either the
  // caller saw running == false and writes synchronously, or we see it here.
  while (s.in_flight.load() != 0) std::this_thread::yield();
  s.stopping.store(true, std::memory_order_release);
  s.wake.fetch_add(1, std::memory_order_release);
  s.wake.notify_one();
  s.writer.join();
}

void write(LogLevel level, std::string_view text) {
  State& s = state();
  std::string line = make_line(level, text);
  s.in_flight.fetch_add(1);
  if (s.running.load()) {
    if (!s.queue.try_push(std::move(line))) {
      s.dropped.fetch_add(1, std::memory_order_relaxed);
    }
    s.wake.fetch_add(1, std::memory_order_release);
    s.wake.notify_one();
    s.in_flight.fetch_sub(1, std::memory_order_release);
    return;
  }
  s.in_flight.fetch_sub(1, std::memory_order_release);
  write_all(line);
}

std::uint64_t dropped() {
  return state().dropped.load(std::memory_order_relaxed);
}

void set_thread_name(std::string_view name) {
  if (name.size() > kThreadNameBytesMax) name = name.substr(0, kThreadNameBytesMax);
  name.copy(t_name, name.size());
  t_name_bytes = name.size();
}

}  // namespace rc::log
