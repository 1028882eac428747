// Durability across a real kill -9 (PROTOCOL.md section 5): a child process
// appends without pause and reports every message the log delivers as
// committed; the parent SIGKILLs it mid-stream, reopens the log and checks
// that every reported message is there with the same seq and content, with
// no gap and no duplicate. Three rounds, each one continuing the last.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "persist/log_store.h"
#include "persist/log_writer.h"
#include "tests/persist/temp_dir.h"

namespace rc::persist {
namespace {

using testing::TempDir;

using namespace std::chrono_literals;

constexpr const char* kRoom = "durable-room";
constexpr std::size_t kReportsBeforeKill = 400;

struct Reported {
  std::uint64_t seq = 0;
  std::int64_t ts_ms = 0;
  std::string user_id, name, text, client_id;
};

void write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) _exit(4);
    off += static_cast<std::size_t>(n);
  }
}

// The child: appends forever, one line per committed message on `fd`
// ("seq ts user name text client"; no field contains a space). Never returns.
[[noreturn]] void child_main(const std::string& dir, int round, int fd) {
  LogOptions o;
  o.data_dir = dir;
  o.map_bytes = std::size_t{1} << 28;
  o.retention = std::uint64_t{1} << 40;  // keep everything: the parent checks every seq
  auto log = LogWriter::open(o, [fd](std::uint32_t, std::unique_ptr<LogReply>&& reply) {
    std::string lines;
    for (const auto& c : reply->committed) {
      for (const auto& m : c.messages) {
        lines += fmt::format("{} {} {} {} {} {}\n", m.seq, m.ts_ms, m.user_id, m.name, m.text,
                             m.client_id.empty() ? "-" : m.client_id);
      }
    }
    write_all(fd, lines);
    return true;
  });
  if (!log) {
    write_all(fd, fmt::format("ERROR {}\n", log.status().message()));
    _exit(3);
  }
  (*log)->start();
  auto make = [round](std::uint64_t i) {
    AppendRequest r;
    r.room = kRoom;
    r.msg.ts_ms = 1763798400000 + round * 1000000 + static_cast<std::int64_t>(i);
    r.msg.user_id = fmt::format("u{}", i % 7);
    r.msg.name = fmt::format("Name{}", i % 7);
    r.msg.text = fmt::format("round{}-msg{}-{}", round, i, std::string(i % 100, 'x'));
    r.msg.client_id = i % 3 ? fmt::format("c{}-{}", round, i) : "";
    r.ref = i;
    return r;
  };
  for (std::uint64_t i = 0;; ++i) {
    // A refused request is dropped by the log: build it again to retry.
    while (!(*log)->append(0, make(i))) std::this_thread::sleep_for(100us);
    // A short pause now and then keeps commits small and frequent, so that
    // the kill lands among many of them rather than in one giant batch.
    if (i % 16 == 15) std::this_thread::sleep_for(200us);
  }
}

// Reads lines from fd until `want` lines came (or the child ended or 60 s
// passed), kills the child, then takes whatever it had written before dying.
std::vector<std::string> run_and_kill(pid_t pid, int fd, std::size_t want) {
  std::string buffer;
  std::size_t lines = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  char chunk[65536];
  while (lines < want && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;  // the child died on its own
    buffer.append(chunk, static_cast<std::size_t>(n));
    lines = static_cast<std::size_t>(std::count(buffer.begin(), buffer.end(), '\n'));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child ended early";
  // Everything the child wrote before the kill was reported: collect it too.
  for (ssize_t n; (n = ::read(fd, chunk, sizeof chunk)) > 0;) {
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
  std::vector<std::string> out;
  std::istringstream in(buffer);
  // A line cut by the kill has no newline and was never fully reported.
  for (std::string line; std::getline(in, line);) {
    if (!in.eof()) out.push_back(line);
  }
  return out;
}

Reported parse(const std::string& line) {
  std::istringstream in(line);
  Reported r;
  in >> r.seq >> r.ts_ms >> r.user_id >> r.name >> r.text >> r.client_id;
  if (r.client_id == "-") r.client_id.clear();
  EXPECT_FALSE(in.fail()) << line;
  return r;
}

TEST(LogWriterDurability, EveryReportedMessageSurvivesKill9) {
  TempDir dir;
  std::map<std::uint64_t, Reported> reported;
  for (int round = 0; round < 3; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      child_main(dir.path(), round, fds[1]);
    }
    ::close(fds[1]);
    const auto lines = run_and_kill(pid, fds[0], kReportsBeforeKill);
    ::close(fds[0]);
    ASSERT_GE(lines.size(), kReportsBeforeKill) << (lines.empty() ? "" : lines[0]);
    for (const auto& line : lines) {
      ASSERT_NE(line.rfind("ERROR", 0), 0u) << line;
      Reported r = parse(line);
      EXPECT_EQ(reported.count(r.seq), 0u) << "seq reported twice: " << r.seq;
      reported[r.seq] = std::move(r);
    }

    // Reopen as the next server start would, and compare.
    StoreOptions o;
    o.data_dir = dir.path();
    o.map_bytes = std::size_t{1} << 28;
    auto store = LogStore::open(o);
    ASSERT_TRUE(store.is_ok()) << store.status().message();
    auto reader = (*store)->reader();
    ASSERT_TRUE(reader.is_ok());
    std::map<std::uint64_t, ChatMessage> stored;
    std::set<std::string> texts;
    auto visit = [&](std::uint64_t seq, OpenError err, const ChatMessage& m) {
      EXPECT_EQ(err, OpenError::kNone) << seq;
      EXPECT_TRUE(texts.insert(m.text).second) << "duplicate message " << m.text;
      stored[seq] = m;
      return true;
    };
    ASSERT_TRUE(reader->scan(kRoom, 0, visit).is_ok());
    ASSERT_FALSE(stored.empty());
    EXPECT_EQ(stored.begin()->first, 1u);
    EXPECT_EQ(stored.rbegin()->first, stored.size()) << "a gap in the seqs";
    std::printf("round %d: %zu messages reported, %zu stored\n", round, reported.size(),
                stored.size());
    for (const auto& [seq, r] : reported) {
      auto it = stored.find(seq);
      ASSERT_NE(it, stored.end()) << "reported seq " << seq << " lost in round " << round;
      EXPECT_EQ(it->second.ts_ms, r.ts_ms) << seq;
      EXPECT_EQ(it->second.user_id, r.user_id) << seq;
      EXPECT_EQ(it->second.name, r.name) << seq;
      EXPECT_EQ(it->second.text, r.text) << seq;
      EXPECT_EQ(it->second.client_id, r.client_id) << seq;
    }
  }
}

}  // namespace
}  // namespace rc::persist
