// tools/rollcall-log run as a separate process against logs written by the
// real LogWriter. The binary is looked for next to this test executable (the
// build directory); the test is skipped when it has not been built.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "persist/lmdb_env.h"
#include "persist/log_writer.h"
#include "persist/record.h"
#include "tests/persist/temp_dir.h"

namespace rc::persist {
namespace {

using testing::TempDir;

std::string tool_path() {
  const auto self = std::filesystem::read_symlink("/proc/self/exe");
  return (self.parent_path() / "rollcall-log").string();
}

struct ToolRun {
  int status = -1;
  std::string output;  // stdout and stderr
};

ToolRun run_tool(const std::string& args) {
  ToolRun r;
  FILE* p = ::popen(fmt::format("{} {} 2>&1", tool_path(), args).c_str(), "r");
  RC_ASSERT(p != nullptr);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.output.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

LogOptions options_for(const std::string& dir) {
  LogOptions o;
  o.data_dir = dir;
  o.map_bytes = std::size_t{1} << 26;
  return o;
}

// Rooms "maths" (6 messages) and "physics-101" (4), committed and closed.
void populate(const std::string& dir) {
  auto log = LogWriter::open(options_for(dir),
                             [](std::uint32_t, std::unique_ptr<LogReply>&&) { return true; });
  ASSERT_TRUE(log.is_ok()) << log.status().message();
  for (int i = 0; i < 10; ++i) {
    AppendRequest r;
    r.room = i < 6 ? "maths" : "physics-101";
    r.msg.ts_ms = 1763798400123 + i;
    r.msg.user_id = fmt::format("u{}", i);
    r.msg.name = "Ada \"A\"";
    r.msg.text = fmt::format("line {}\nsecond", i);
    r.msg.client_id = i % 2 ? fmt::format("c-{}", i) : "";
    ASSERT_TRUE((*log)->append(0, std::move(r)));
  }
  (*log)->start();
  (*log)->stop();
}

class LogTool : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(tool_path())) GTEST_SKIP() << "rollcall-log not built";
    populate(dir_.path());
  }
  std::string base() const { return fmt::format("--data-dir {}", dir_.path()); }
  TempDir dir_;
};

TEST_F(LogTool, RoomsListsCountsAndLastSeq) {
  const ToolRun r = run_tool(base() + " rooms");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "maths")) << r.output;
  EXPECT_TRUE(contains(r.output, "physics-101"));
  // Columns: room, messages, first_seq, last_seq.
  std::istringstream lines(r.output);
  std::string line;
  std::getline(lines, line);  // header
  std::string room;
  std::uint64_t count, first, last;
  lines >> room >> count >> first >> last;
  EXPECT_EQ(room, "maths");
  EXPECT_EQ(count, 6u);
  EXPECT_EQ(first, 1u);
  EXPECT_EQ(last, 6u);
}

TEST_F(LogTool, DumpHonoursAfterAndLimit) {
  const ToolRun r = run_tool(base() + " dump maths --after 2 --limit 2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "#3 2025-11-22T08:00:00.125Z Ada \"A\" (u2): line 2\\nsecond\n"))
      << r.output;
  EXPECT_TRUE(contains(r.output, "#4 "));
  EXPECT_FALSE(contains(r.output, "#2 "));
  EXPECT_FALSE(contains(r.output, "#5 "));
}

TEST_F(LogTool, ExportWritesOneJsonObjectPerMessage) {
  const ToolRun all = run_tool(base() + " export");
  ASSERT_EQ(all.status, 0) << all.output;
  EXPECT_EQ(std::count(all.output.begin(), all.output.end(), '\n'), 10);
  EXPECT_TRUE(contains(all.output,
                       R"({"room":"maths","seq":2,"ts":1763798400124,"user_id":"u1",)"
                       R"("name":"Ada \"A\"","text":"line 1\nsecond","client_id":"c-1"})"))
      << all.output;
  const ToolRun one = run_tool(base() + " export physics-101");
  ASSERT_EQ(one.status, 0);
  EXPECT_EQ(std::count(one.output.begin(), one.output.end(), '\n'), 4);
  EXPECT_FALSE(contains(one.output, "maths"));
}

TEST_F(LogTool, VerifyFindsUndecryptableRecordsAndGaps) {
  ToolRun r = run_tool(base() + " verify");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "2 rooms, 10 messages, 0 problems")) << r.output;
  {
    auto env = db::Env::open(dir_.path(), db::EnvOptions{std::size_t{1} << 26, false});
    ASSERT_TRUE(env.is_ok());
    auto txn = (*env)->begin_write();
    std::string v(**txn->get(RecordKey("maths", 2).view()));
    v.back() ^= 1;
    ASSERT_TRUE(txn->put(RecordKey("maths", 2).view(), v).is_ok());
    ASSERT_TRUE(*txn->del(RecordKey("physics-101", 2).view()));
    ASSERT_TRUE(txn->commit().is_ok());
  }
  r = run_tool(base() + " verify");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "maths: seq 2: record does not decrypt")) << r.output;
  EXPECT_TRUE(contains(r.output, "physics-101: seq 3 follows 1 (gap)")) << r.output;
  // Export leaves the bad record out and says so with its status.
  r = run_tool(base() + " export maths");
  EXPECT_EQ(r.status, 1);
  EXPECT_FALSE(contains(r.output, "\"seq\":2,"));
  EXPECT_TRUE(contains(r.output, "\"seq\":3,"));
}

TEST_F(LogTool, WrongKeyAndMissingLogExitWithStatus2) {
  std::ofstream(dir_.file("other.key")) << std::string(64, '7') << "\n";
  ToolRun r = run_tool(fmt::format("{} --chat-key-file {} rooms", base(), dir_.file("other.key")));
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.output, "the chat key does not open the log")) << r.output;
  r = run_tool(fmt::format("--data-dir {} rooms", dir_.file("nothing-here")));
  EXPECT_EQ(r.status, 2);
  EXPECT_FALSE(std::filesystem::exists(dir_.file("nothing-here")));
  r = run_tool(base());
  EXPECT_EQ(r.status, 2);
}

TEST_F(LogTool, CompactCopyVerifiesWithTheSameKey) {
  const std::string out = dir_.file("compacted");
  ToolRun r = run_tool(fmt::format("{} compact {}", base(), out));
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_tool(fmt::format("--data-dir {} --chat-key-file {} verify", out, dir_.file("chat.key")));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "2 rooms, 10 messages, 0 problems"));
  // A second compact into the same (now full) directory is refused.
  EXPECT_EQ(run_tool(fmt::format("{} compact {}", base(), out)).status, 2);
}

TEST_F(LogTool, ReadsWhileAWriterIsRunning) {
  // A writer in this process holds the log open and keeps committing while
  // the tool, another process, reads and copies it.
  std::atomic<bool> done{false};
  auto log = LogWriter::open(options_for(dir_.path()),
                             [](std::uint32_t, std::unique_ptr<LogReply>&&) { return true; });
  ASSERT_TRUE(log.is_ok());
  (*log)->start();
  std::thread writer([&] {
    for (int i = 0; !done.load(); ++i) {
      AppendRequest r;
      r.room = "busy";
      r.msg.text = fmt::format("m{}", i);
      (*log)->append(0, std::move(r));
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  const ToolRun rooms = run_tool(base() + " rooms");
  const ToolRun verify = run_tool(base() + " verify");
  const ToolRun compact = run_tool(fmt::format("{} compact {}", base(), dir_.file("live-copy")));
  done.store(true);
  writer.join();
  (*log)->stop();
  EXPECT_EQ(rooms.status, 0) << rooms.output;
  EXPECT_EQ(verify.status, 0) << verify.output;
  EXPECT_EQ(compact.status, 0) << compact.output;
  EXPECT_TRUE(contains(verify.output, "maths: 6 messages, seq 1..6: ok")) << verify.output;
}

}  // namespace
}  // namespace rc::persist
