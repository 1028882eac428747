#include "core/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/assert.h"

namespace rc {
namespace {

// Points fd 2 at a pipe and collects what arrives there until finish().
// With start_paused, nothing is read until resume(): the pipe fills up and
// whoever writes to stderr blocks, as it would on a stuck terminal.
class StderrCapture {
 public:
  explicit StderrCapture(bool start_paused = false) : paused_(start_paused) {
    int fds[2];
    RC_ASSERT(::pipe(fds) == 0);
    read_fd_ = fds[0];
    write_fd_ = fds[1];
    saved_fd_ = ::dup(STDERR_FILENO);
    RC_ASSERT(saved_fd_ >= 0 && ::dup2(write_fd_, STDERR_FILENO) == STDERR_FILENO);
    reader_ = std::thread([this] {
      while (paused_.load()) std::this_thread::yield();
      char buf[4096];
      for (;;) {
        const ssize_t n = ::read(read_fd_, buf, sizeof buf);
        if (n <= 0) break;
        text_.append(buf, static_cast<std::size_t>(n));
      }
    });
  }
  ~StderrCapture() {
    if (reader_.joinable()) finish();
  }
  void resume() { paused_.store(false); }
  std::string finish() {
    resume();
    ::dup2(saved_fd_, STDERR_FILENO);
    ::close(saved_fd_);
    ::close(write_fd_);  // the last write end: the reader sees end of file
    reader_.join();
    ::close(read_fd_);
    return text_;
  }

 private:
  std::atomic<bool> paused_;
  int read_fd_ = -1, write_fd_ = -1, saved_fd_ = -1;
  std::thread reader_;
  std::string text_;
};

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

const char* const kStamp = R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)";

TEST(Log, LevelsFilterLowerLines) {
  log::set_level(LogLevel::kWarn);
  EXPECT_FALSE(log::enabled(LogLevel::kDebug));
  EXPECT_FALSE(log::enabled(LogLevel::kInfo));
  EXPECT_TRUE(log::enabled(LogLevel::kWarn));
  EXPECT_TRUE(log::enabled(LogLevel::kError));
  EXPECT_EQ(log::level(), LogLevel::kWarn);
  log::set_level(LogLevel::kDebug);
  EXPECT_TRUE(log::enabled(LogLevel::kDebug));
  log::set_level(LogLevel::kInfo);
}

TEST(Log, DisabledMacroDoesNotEvaluateItsArguments) {
  int evaluated = 0;
  auto costly = [&evaluated] { return ++evaluated; };
  log::set_level(LogLevel::kError);
  StderrCapture capture;
  RC_INFO("value {}", costly());
  RC_DEBUG("value {}", costly());
  const std::string text = capture.finish();
  log::set_level(LogLevel::kInfo);
  EXPECT_EQ(evaluated, 0);
  EXPECT_EQ(text, "");
}

TEST(Log, LevelNames) {
  EXPECT_EQ(log::level_name(LogLevel::kDebug), "DEBUG");
  EXPECT_EQ(log::level_name(LogLevel::kInfo), "INFO");
  EXPECT_EQ(log::level_name(LogLevel::kWarn), "WARN");
  EXPECT_EQ(log::level_name(LogLevel::kError), "ERROR");
}

TEST(Log, WritesSynchronouslyBeforeStart) {
  log::set_thread_name("tester");
  StderrCapture capture;
  RC_INFO("hello {} {}", 42, "world");
  RC_ERROR("bad thing");
  const std::string text = capture.finish();
  const std::regex expected(std::string(kStamp) + R"( INFO tester: hello 42 world\n)" + kStamp +
                            R"( ERROR tester: bad thing\n)");
  EXPECT_TRUE(std::regex_match(text, expected)) << text;
}

TEST(Log, TimestampIsCurrentUtc) {
  StderrCapture capture;
  const std::time_t before = std::time(nullptr);
  RC_WARN("clock");
  const std::time_t after = std::time(nullptr);
  const std::string text = capture.finish();
  std::tm tm{};
  ASSERT_EQ(sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
            6)
      << text;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t logged = timegm(&tm);
  EXPECT_GE(logged, before);
  EXPECT_LE(logged, after);
}

TEST(Log, ThreadNamesArePerThreadAndBounded) {
  StderrCapture capture;
  std::thread([] { log::write(LogLevel::kInfo, "anonymous"); }).join();
  std::thread([] {
    log::set_thread_name(std::string(40, 'n'));
    log::write(LogLevel::kInfo, "long name");
  }).join();
  std::thread([] {
    log::set_thread_name("shard 1");
    log::write(LogLevel::kInfo, "already ends\n");
  }).join();
  const auto lines = split_lines(capture.finish());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(std::regex_match(lines[0], std::regex(std::string(kStamp) + " INFO anonymous")))
      << lines[0];
  EXPECT_TRUE(std::regex_match(
      lines[1], std::regex(std::string(kStamp) + " INFO " + std::string(31, 'n') + ": long name")))
      << lines[1];
  EXPECT_TRUE(
      std::regex_match(lines[2], std::regex(std::string(kStamp) + " INFO shard 1: already ends")))
      << lines[2];
}

// Lines from several threads all arrive through the writer thread, each
// thread's lines in order; stop() flushes them before it returns.
TEST(Log, WriterThreadDeliversEveryLineInOrderPerThread) {
  constexpr int kThreads = 4;
  constexpr int kLinesEach = 1000;  // 4000 lines fit the queue: no drop
  static_assert(kThreads * kLinesEach < static_cast<int>(log::kQueueLines));
  StderrCapture capture;
  const std::uint64_t dropped_before = log::dropped();
  log::start();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      log::set_thread_name(fmt::format("w{}", t));
      for (int i = 0; i < kLinesEach; ++i) RC_INFO("line {}", i);
    });
  }
  for (auto& th : threads) th.join();
  log::stop();
  RC_INFO("after stop");  // synchronous again
  const auto lines = split_lines(capture.finish());
  EXPECT_EQ(log::dropped(), dropped_before);

  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kLinesEach + 1));
  std::vector<int> next(kThreads, 0);
  const std::regex shape(std::string(kStamp) + R"( INFO w(\d): line (\d+))");
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(lines[i], m, shape)) << lines[i];
    const int t = std::stoi(m[1]), n = std::stoi(m[2]);
    ASSERT_LT(t, kThreads);
    EXPECT_EQ(n, next[t]) << "thread " << t;
    next[t] = n + 1;
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kLinesEach);
  EXPECT_NE(lines.back().find("after stop"), std::string::npos);
}

TEST(Log, StopWithoutStartIsHarmlessAndRestartWorks) {
  log::stop();
  StderrCapture capture;
  log::start();
  RC_INFO("first run");
  log::stop();
  log::start();
  RC_INFO("second run");
  log::stop();
  const auto lines = split_lines(capture.finish());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("first run"), std::string::npos);
  EXPECT_NE(lines[1].find("second run"), std::string::npos);
}

// With stderr stuck, the writer blocks, the queue fills, and write() keeps
// returning at once: extra lines are dropped and counted, then reported.
TEST(Log, FullQueueDropsCountsAndReports) {
  constexpr int kLines = 30000;
  static_assert(kLines > 2 * static_cast<int>(log::kQueueLines));
  StderrCapture capture(/*start_paused=*/true);
  log::set_thread_name("dropper");
  const std::uint64_t dropped_before = log::dropped();
  log::start();
  const std::string payload(200, 'x');
  for (int i = 0; i < kLines; ++i) RC_INFO("{} {}", i, payload);
  const std::uint64_t dropped_now = log::dropped() - dropped_before;
  EXPECT_GT(dropped_now, 0u);
  capture.resume();
  log::stop();
  const auto lines = split_lines(capture.finish());

  std::uint64_t delivered = 0, reported = 0;
  int last = -1;
  const std::regex notice(std::string(kStamp) + R"( WARN log: (\d+) log lines dropped)");
  for (const auto& line : lines) {
    std::smatch m;
    if (std::regex_match(line, m, notice)) {
      reported += std::stoull(m[1]);
      continue;
    }
    const auto at = line.find("dropper: ");
    ASSERT_NE(at, std::string::npos) << line;
    const int i = std::stoi(line.substr(at + 9));
    EXPECT_GT(i, last);  // survivors keep their order
    last = i;
    ++delivered;
  }
  EXPECT_EQ(reported, dropped_now);
  EXPECT_EQ(delivered + dropped_now, static_cast<std::uint64_t>(kLines));
}

}  // namespace
}  // namespace rc
