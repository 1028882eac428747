#include "persist/log_writer.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "persist/lmdb_env.h"
#include "persist/record.h"
#include "tests/persist/temp_dir.h"

namespace rc::persist {
namespace {

using testing::TempDir;

using namespace std::chrono_literals;

// Collects what the writer delivers, as a shard would (any thread may ask).
class Collector {
 public:
  struct Delivery {
    std::uint32_t shard;
    std::unique_ptr<LogReply> reply;
  };

  // refuse_first: the first n deliveries are refused, leaving the reply to
  // the writer (it must offer them again).
  Deliver deliver(int refuse_first = 0) {
    refuse_ = refuse_first;
    return [this](std::uint32_t shard, std::unique_ptr<LogReply>&& reply) {
      std::lock_guard lock(mu_);
      if (refuse_ > 0) {
        --refuse_;
        ++refused_;
        return false;
      }
      deliveries_.push_back(Delivery{shard, std::move(reply)});
      cv_.notify_all();
      return true;
    };
  }

  // Waits until n answers (committed messages, failures, opens, reads) came.
  bool wait_answers(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 30s, [&] { return answers_locked() >= n; });
  }
  std::size_t answers() {
    std::lock_guard lock(mu_);
    return answers_locked();
  }

  // Every committed message of room, in delivery order, and their refs.
  std::vector<ChatMessage> committed(std::string_view room,
                                     std::vector<std::uint64_t>* refs = nullptr) {
    std::lock_guard lock(mu_);
    std::vector<ChatMessage> out;
    for (const auto& d : deliveries_) {
      for (const auto& c : d.reply->committed) {
        if (c.room != room) continue;
        EXPECT_EQ(c.messages.size(), c.refs.size());
        out.insert(out.end(), c.messages.begin(), c.messages.end());
        if (refs) refs->insert(refs->end(), c.refs.begin(), c.refs.end());
      }
    }
    return out;
  }
  template <typename T>
  std::vector<T> all(std::vector<T> LogReply::*field,
                     std::vector<std::uint32_t>* shards = nullptr) {
    std::lock_guard lock(mu_);
    std::vector<T> out;
    for (const auto& d : deliveries_) {
      for (const auto& x : (*d.reply).*field) {
        out.push_back(x);
        if (shards) shards->push_back(d.shard);
      }
    }
    return out;
  }
  std::vector<AppendFailed> failed() { return all(&LogReply::failed); }
  std::vector<Opened> opened() { return all(&LogReply::opened); }
  std::vector<ReadResult> reads() { return all(&LogReply::reads); }
  int refused() {
    std::lock_guard lock(mu_);
    return refused_;
  }
  void clear() {
    std::lock_guard lock(mu_);
    deliveries_.clear();
  }

 private:
  std::size_t answers_locked() const {
    std::size_t n = 0;
    for (const auto& d : deliveries_) {
      for (const auto& c : d.reply->committed) n += c.messages.size();
      n += d.reply->failed.size() + d.reply->opened.size() + d.reply->reads.size();
    }
    return n;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Delivery> deliveries_;
  int refuse_ = 0;
  int refused_ = 0;
};

LogOptions options_for(const std::string& dir) {
  LogOptions o;
  o.data_dir = dir;
  o.map_bytes = std::size_t{1} << 28;
  return o;
}

std::unique_ptr<LogWriter> open_log(const LogOptions& o, Collector& c, int refuse_first = 0) {
  auto log = LogWriter::open(o, c.deliver(refuse_first));
  EXPECT_TRUE(log.is_ok()) << log.status().message();
  return log.is_ok() ? std::move(*log) : nullptr;
}

AppendRequest chat(std::string room, std::string text, std::uint64_t ref = 0) {
  AppendRequest r;
  r.room = std::move(room);
  r.msg.ts_ms = 1763798400000 + static_cast<std::int64_t>(ref);
  r.msg.user_id = fmt::format("user-{}", ref % 5);
  r.msg.name = fmt::format("Name {}", ref % 5);
  r.msg.text = std::move(text);
  r.msg.client_id = ref % 2 ? fmt::format("c-{}", ref) : "";
  r.ref = ref;
  return r;
}

std::vector<std::uint64_t> seqs_of(const std::vector<ChatMessage>& msgs) {
  std::vector<std::uint64_t> out;
  for (const auto& m : msgs) out.push_back(m.seq);
  return out;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t s = first; s <= last; ++s) out.push_back(s);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- appends

TEST(LogWriter, AppendsAreCommittedInOrderAndDelivered) {
  TempDir dir;
  Collector c;
  auto log = open_log(options_for(dir.path()), c);
  log->start();
  for (std::uint64_t i = 1; i <= 5; ++i) {
    ASSERT_TRUE(log->append(0, chat("physics-101", fmt::format("hello {}", i), 100 + i)));
  }
  ASSERT_TRUE(c.wait_answers(5));
  std::vector<std::uint64_t> refs;
  const auto msgs = c.committed("physics-101", &refs);
  EXPECT_EQ(seqs_of(msgs), range(1, 5));
  EXPECT_EQ(refs, (std::vector<std::uint64_t>{101, 102, 103, 104, 105}));
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    const AppendRequest want = chat("physics-101", fmt::format("hello {}", i + 1), 101 + i);
    EXPECT_EQ(msgs[i].text, want.msg.text);
    EXPECT_EQ(msgs[i].user_id, want.msg.user_id);
    EXPECT_EQ(msgs[i].name, want.msg.name);
    EXPECT_EQ(msgs[i].client_id, want.msg.client_id);
    EXPECT_EQ(msgs[i].ts_ms, want.msg.ts_ms);
  }
  log->stop();
  EXPECT_GE(log->stats().commits.get(), 1u);
  EXPECT_EQ(log->stats().messages_committed.get(), 5u);
  EXPECT_EQ(log->stats().commit_batch_size.sum(), 5u);
  EXPECT_EQ(log->stats().commit_latency_us.count(), log->stats().commits.get());
  EXPECT_TRUE(c.failed().empty());
}

TEST(LogWriter, QueuedRequestsShareOneCommitAndReadsSeeIt) {
  TempDir dir;
  Collector c;
  auto log = open_log(options_for(dir.path()), c);
  // Queued before the thread runs: one turn takes them all.
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(log->append(0, chat("room", "m", i)));
  ASSERT_TRUE(log->open(0, OpenRequest{"room", 10}));
  log->start();
  ASSERT_TRUE(c.wait_answers(51));
  log->stop();
  EXPECT_EQ(log->stats().commits.get(), 1u);
  EXPECT_EQ(log->stats().commit_batch_size.count(), 1u);
  EXPECT_EQ(log->stats().commit_batch_size.sum(), 50u);
  const auto opened = c.opened();
  ASSERT_EQ(opened.size(), 1u);
  EXPECT_EQ(opened[0].last_seq, 50u);
  EXPECT_EQ(seqs_of(opened[0].recent), range(41, 50));
  EXPECT_FALSE(opened[0].complete);
}

TEST(LogWriter, RepliesGoToTheRequestingShard) {
  TempDir dir;
  Collector c;
  LogOptions o = options_for(dir.path());
  o.shards = 3;
  auto log = open_log(o, c);
  log->start();
  ASSERT_TRUE(log->append(2, chat("r2", "x", 7)));
  ASSERT_TRUE(c.wait_answers(1));
  ASSERT_TRUE(log->open(1, OpenRequest{"r2", 5}));
  ASSERT_TRUE(log->read(0, ReadRequest{"r2", 0, 0, 5, 99}));
  ASSERT_TRUE(c.wait_answers(3));
  log->stop();
  std::vector<std::uint32_t> shards;
  c.all(&LogReply::committed, &shards);
  EXPECT_EQ(shards, std::vector<std::uint32_t>{2});
  shards.clear();
  c.all(&LogReply::opened, &shards);
  EXPECT_EQ(shards, std::vector<std::uint32_t>{1});
  shards.clear();
  const auto reads = c.all(&LogReply::reads, &shards);
  EXPECT_EQ(shards, std::vector<std::uint32_t>{0});
  EXPECT_EQ(reads[0].ref, 99u);
  EXPECT_EQ(seqs_of(reads[0].messages), range(1, 1));
}

TEST(LogWriter, SeqContinuesAcrossReopen) {
  TempDir dir;
  {
    Collector c;
    auto log = open_log(options_for(dir.path()), c);
    log->start();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->append(0, chat("room", "before", i)));
    log->stop();
    EXPECT_EQ(seqs_of(c.committed("room")), range(1, 5));
  }
  Collector c;
  auto log = open_log(options_for(dir.path()), c);
  log->start();
  ASSERT_TRUE(log->open(0, OpenRequest{"room", 0}));
  ASSERT_TRUE(c.wait_answers(1));
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(log->append(0, chat("room", "after", i)));
  log->stop();
  EXPECT_EQ(c.opened()[0].last_seq, 5u);
  EXPECT_EQ(seqs_of(c.committed("room")), range(6, 7));
}

TEST(LogWriter, InterleavedRoomsEachCountFromOne) {
  TempDir dir;
  Collector c;
  auto log = open_log(options_for(dir.path()), c);
  log->start();
  const std::vector<std::string> rooms = {"a", "a-b", "ab", "b", "A"};
  for (int i = 0; i < 40; ++i) {
    const std::string& room = rooms[(i * 7) % rooms.size()];
    ASSERT_TRUE(log->append(0, chat(room, fmt::format("{}#{}", room, i), i)));
    if (i % 9 == 0) std::this_thread::sleep_for(1ms);  // spread over several commits
  }
  log->stop();
  for (const auto& room : rooms) {
    const auto msgs = c.committed(room);
    ASSERT_EQ(msgs.size(), 8u) << room;
    EXPECT_EQ(seqs_of(msgs), range(1, 8)) << room;
    for (const auto& m : msgs)
      EXPECT_EQ(m.text.substr(0, room.size() + 1), fmt::format("{}#", room));
  }
  // Read back through a new writer: each room holds only its own messages.
  Collector c2;
  auto again = open_log(options_for(dir.path()), c2);
  for (const auto& room : rooms) ASSERT_TRUE(again->read(0, ReadRequest{room, 0, 0, 100, 1}));
  again->start();
  again->stop();
  const auto reads = c2.reads();
  ASSERT_EQ(reads.size(), rooms.size());
  for (const auto& r : reads) {
    EXPECT_EQ(seqs_of(r.messages), range(1, 8)) << r.room;
    EXPECT_TRUE(r.complete);
    for (const auto& m : r.messages) {
      EXPECT_EQ(m.text.substr(0, r.room.size() + 1), fmt::format("{}#", r.room));
    }
  }
}

// ---- opens and reads

TEST(LogWriter, OpenReturnsLastSeqAndTheNewest) {
  TempDir dir;
  Collector c;
  auto log = open_log(options_for(dir.path()), c);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(log->append(0, chat("room", "m", i)));
  log->start();
  ASSERT_TRUE(c.wait_answers(10));
  ASSERT_TRUE(log->open(0, OpenRequest{"room", 3}));
  ASSERT_TRUE(log->open(0, OpenRequest{"room", 10}));
  ASSERT_TRUE(log->open(0, OpenRequest{"room", 200}));
  ASSERT_TRUE(log->open(0, OpenRequest{"room", 0}));
  ASSERT_TRUE(log->open(0, OpenRequest{"empty", 200}));
  log->stop();
  const auto o = c.opened();
  ASSERT_EQ(o.size(), 5u);
  EXPECT_EQ(o[0].last_seq, 10u);
  EXPECT_EQ(seqs_of(o[0].recent), range(8, 10));
  EXPECT_FALSE(o[0].complete);
  EXPECT_EQ(seqs_of(o[1].recent), range(1, 10));
  EXPECT_TRUE(o[1].complete);
  EXPECT_EQ(seqs_of(o[2].recent), range(1, 10));
  EXPECT_TRUE(o[2].complete);
  EXPECT_TRUE(o[3].recent.empty());
  EXPECT_FALSE(o[3].complete);
  EXPECT_EQ(o[4].room, "empty");
  EXPECT_EQ(o[4].last_seq, 0u);
  EXPECT_TRUE(o[4].recent.empty());
  EXPECT_TRUE(o[4].complete);
}

TEST(LogWriter, ReadPagesBackwardsWithBoundsAndLimit) {
  TempDir dir;
  Collector c;
  auto log = open_log(options_for(dir.path()), c);
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(log->append(0, chat("room", "m", i)));
  log->start();
  ASSERT_TRUE(c.wait_answers(25));
  struct Case {
    std::uint64_t after, before;
    std::uint32_t limit;
    std::vector<std::uint64_t> seqs;
    bool complete;
  };
  const std::vector<Case> cases = {
      {0, 0, 10, range(16, 25), false},    // newest page
      {0, 16, 10, range(6, 15), false},    // history before=16
      {0, 6, 10, range(1, 5), true},       // the oldest page
      {20, 0, 1000, range(21, 25), true},  // resume since=20
      {5, 10, 2, range(8, 9), false},
      {5, 10, 4, range(6, 9), true},
      {25, 0, 10, {}, true},
      {0, 1, 10, {}, true},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(
        log->read(0, ReadRequest{"room", cases[i].after, cases[i].before, cases[i].limit, i}));
  }
  log->stop();
  const auto reads = c.reads();
  ASSERT_EQ(reads.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(reads[i].ref, i);
    EXPECT_EQ(seqs_of(reads[i].messages), cases[i].seqs) << "case " << i;
    EXPECT_EQ(reads[i].complete, cases[i].complete) << "case " << i;
  }
  EXPECT_EQ(log->stats().reads.get(), cases.size());
}

// ---- retention

TEST(LogWriter, RetentionKeepsTheNewestAndTheirSeqs) {
  TempDir dir;
  Collector c;
  LogOptions o = options_for(dir.path());
  o.retention = 5;
  auto log = open_log(o, c);
  log->start();
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(log->append(0, chat("room", fmt::format("m{}", i + 1), i)));
    ASSERT_TRUE(c.wait_answers(static_cast<std::size_t>(i + 1)));
  }
  ASSERT_TRUE(log->read(0, ReadRequest{"room", 0, 0, 100, 1}));
  ASSERT_TRUE(log->open(0, OpenRequest{"room", 100}));
  log->stop();
  EXPECT_EQ(seqs_of(c.committed("room")), range(1, 12));
  const auto r = c.reads();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(seqs_of(r[0].messages), range(8, 12));
  EXPECT_EQ(r[0].messages.front().text, "m8");
  EXPECT_TRUE(r[0].complete);
  EXPECT_EQ(c.opened()[0].last_seq, 12u);
  EXPECT_EQ(log->stats().retention_deleted.get(), 7u);

  // After a restart the seqs go on from the last one, not from the count.
  Collector c2;
  auto again = open_log(o, c2);
  ASSERT_TRUE(again->append(0, chat("room", "m13", 13)));
  again->start();
  again->stop();
  EXPECT_EQ(seqs_of(c2.committed("room")), range(13, 13));
}

// Writes `per_room` messages into each room (default retention) and stops.
void fill_log(const TempDir& dir,
              const std::vector<std::pair<std::string, std::uint64_t>>& per_room) {
  Collector c;
  auto log = open_log(options_for(dir.path()), c);
  for (const auto& [room, n] : per_room) {
    for (std::uint64_t i = 0; i < n; ++i) ASSERT_TRUE(log->append(0, chat(room, "x", i)));
  }
  log->start();
  log->stop();
  for (const auto& [room, n] : per_room) ASSERT_EQ(c.committed(room).size(), n);
}

TEST(LogWriter, RetentionBacklogIsTrimmedInChunksWithoutNewChat) {
  TempDir dir;
  const std::uint64_t total = 25000;
  fill_log(dir, {{"big", total}, {"small", 30}});
  Collector c;
  LogOptions o = options_for(dir.path());
  o.retention = 10;  // lowered: 24990 + 20 records are now too old
  auto log = open_log(o, c);
  log->start();
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (log->stats().retention_deleted.get() < total - 10 + 20 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(log->stats().retention_deleted.get(), total - 10 + 20);
  // At most retention_deletes_per_txn per transaction.
  EXPECT_GE(log->stats().commits.get(), 3u);
  ASSERT_TRUE(log->read(0, ReadRequest{"big", 0, 0, 100, 1}));
  ASSERT_TRUE(log->read(0, ReadRequest{"small", 0, 0, 100, 2}));
  ASSERT_TRUE(c.wait_answers(2));
  log->stop();
  const auto reads = c.reads();
  ASSERT_EQ(reads.size(), 2u);
  EXPECT_EQ(seqs_of(reads[0].messages), range(total - 9, total));
  EXPECT_TRUE(reads[0].complete);
  EXPECT_EQ(seqs_of(reads[1].messages), range(21, 30));
}

TEST(LogWriter, ReadsShowOnlyWhatRetentionKeepsBeforeItsDeletesRun) {
  // Retention lowered: the backlog of deletes takes several transactions,
  // but no read in between shows a message beyond the newest `retention`,
  // or counts one against `complete`.
  TempDir dir;
  const std::uint64_t total = 25000;
  fill_log(dir, {{"big", total}});
  Collector c;
  LogOptions o = options_for(dir.path());
  o.retention = 10;
  auto log = open_log(o, c);
  ASSERT_TRUE(log->read(0, ReadRequest{"big", 0, 0, 100, 1}));
  ASSERT_TRUE(log->read(0, ReadRequest{"big", 0, total - 9, 100, 2}));  // before the window
  ASSERT_TRUE(log->read(0, ReadRequest{"big", 5, 0, 1000, 3}));         // since=5
  ASSERT_TRUE(log->open(0, OpenRequest{"big", 200}));
  log->start();  // the reads are served on the first turn, with the backlog still there
  ASSERT_TRUE(c.wait_answers(4));
  log->stop();
  EXPECT_LT(log->stats().commits.get(), 3u) << "the backlog was gone before the reads";
  const auto r = c.reads();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(seqs_of(r[0].messages), range(total - 9, total));
  EXPECT_TRUE(r[0].complete);
  EXPECT_TRUE(r[1].messages.empty());
  EXPECT_TRUE(r[1].complete);
  EXPECT_EQ(seqs_of(r[2].messages), range(total - 9, total));
  EXPECT_TRUE(r[2].complete);
  ASSERT_EQ(c.opened().size(), 1u);
  EXPECT_EQ(seqs_of(c.opened()[0].recent), range(total - 9, total));
  EXPECT_TRUE(c.opened()[0].complete);
}

// ---- at rest

TEST(LogWriter, NoPlaintextBodyInTheDataFile) {
  TempDir dir;
  Collector c;
  auto log = open_log(options_for(dir.path()), c);
  log->start();
  AppendRequest r = chat("plain-room", "SECRET-TEXT-zebra-giraffe", 1);
  r.msg.user_id = "user-PLAINCHECK";
  r.msg.name = "Name-PLAINCHECK";
  r.msg.client_id = "client-PLAINCHECK";
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(log->append(0, AppendRequest(r)));
  log->stop();
  ASSERT_EQ(c.committed("plain-room").size(), 20u);
  const std::string bytes = read_file(dir.file("data.mdb"));
  ASSERT_FALSE(bytes.empty());
  // The room id is a key (not secret): finding it proves the search works.
  EXPECT_NE(bytes.find("plain-room"), std::string::npos);
  for (const char* secret : {"SECRET-TEXT", "zebra-giraffe", "user-PLAINCHECK", "Name-PLAINCHECK",
                             "client-PLAINCHECK", "PLAINCHECK"}) {
    EXPECT_EQ(bytes.find(secret), std::string::npos) << secret;
  }
  const std::string key = read_file(dir.file("chat.key")).substr(0, 64);
  EXPECT_EQ(bytes.find(key), std::string::npos);
  EXPECT_EQ(bytes.find(*crypto::hex_decode(key)), std::string::npos);
}

TEST(LogWriter, DefaultKeyIsCreatedOnceAndReused) {
  TempDir dir;
  {
    Collector c;
    auto log = open_log(options_for(dir.path()), c);
    EXPECT_EQ(log->key_path(), dir.file("chat.key"));
    ASSERT_TRUE(log->append(0, chat("room", "one", 1)));
    log->start();
    log->stop();
  }
  const std::string key = read_file(dir.file("chat.key"));
  ASSERT_EQ(key.size(), 65u);
  EXPECT_TRUE(crypto::hex_decode(key.substr(0, 64)).has_value());
  Collector c;
  auto log = open_log(options_for(dir.path()), c);
  ASSERT_TRUE(log->read(0, ReadRequest{"room", 0, 0, 10, 1}));
  log->start();
  log->stop();
  EXPECT_EQ(read_file(dir.file("chat.key")), key);
  ASSERT_EQ(c.reads().size(), 1u);
  EXPECT_EQ(c.reads()[0].messages.at(0).text, "one");
}

TEST(LogWriter, WrongKeyFailsToOpenWithAClearMessage) {
  TempDir dir;
  {
    Collector c;
    auto log = open_log(options_for(dir.path()), c);
    ASSERT_TRUE(log->append(0, chat("room", "one", 1)));
    log->start();
    log->stop();
  }
  std::ofstream(dir.file("other.key")) << std::string(64, 'e') << "\n";
  LogOptions o = options_for(dir.path());
  o.key_file = dir.file("other.key");
  Collector c;
  auto log = LogWriter::open(o, c.deliver());
  ASSERT_FALSE(log.is_ok());
  EXPECT_NE(log.status().message().find(
                fmt::format("the chat key does not open the log in {}", dir.path())),
            std::string::npos)
      << log.status().message();
}

TEST(LogWriter, TamperedOrMovedRecordsAreLeftOutAndReported) {
  TempDir dir;
  {
    Collector c;
    auto log = open_log(options_for(dir.path()), c);
    for (int i = 1; i <= 5; ++i)
      ASSERT_TRUE(log->append(0, chat("room", fmt::format("m{}", i), i)));
    log->start();
    log->stop();
  }
  {
    // Raw writes through the LMDB wrapper: flip one ciphertext byte of seq 2,
    // and put seq 4's (valid) value under seq 5's key.
    auto env = db::Env::open(dir.path(), db::EnvOptions{std::size_t{1} << 28, false});
    ASSERT_TRUE(env.is_ok());
    auto txn = (*env)->begin_write();
    std::string two(**txn->get(RecordKey("room", 2).view()));
    two[kRecordHeaderBytes + 1] ^= 0x01;
    const std::string four(**txn->get(RecordKey("room", 4).view()));
    ASSERT_TRUE(txn->put(RecordKey("room", 2).view(), two).is_ok());
    ASSERT_TRUE(txn->put(RecordKey("room", 5).view(), four).is_ok());
    ASSERT_TRUE(txn->commit().is_ok());
  }
  Collector c;
  auto log = open_log(options_for(dir.path()), c);
  ASSERT_TRUE(log->read(0, ReadRequest{"room", 0, 0, 10, 1}));
  ASSERT_TRUE(log->open(0, OpenRequest{"room", 10}));
  log->start();
  log->stop();
  const auto reads = c.reads();
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(seqs_of(reads[0].messages), (std::vector<std::uint64_t>{1, 3, 4}));
  for (const auto& m : reads[0].messages) EXPECT_EQ(m.text, fmt::format("m{}", m.seq));
  const auto opened = c.opened();
  EXPECT_EQ(opened[0].last_seq, 5u);
  EXPECT_EQ(seqs_of(opened[0].recent), (std::vector<std::uint64_t>{1, 3, 4}));
  EXPECT_EQ(log->stats().decrypt_failures.get(), 4u);  // two records, read twice
}

// ---- failures

TEST(LogWriter, FullMapFailsAppendsAndKeepsServingReads) {
  TempDir dir;
  LogOptions o = options_for(dir.path());
  o.map_bytes = 256 * 1024;
  Collector c;
  auto log = open_log(o, c);
  log->start();
  std::size_t committed = 0;
  bool failed = false;
  for (int i = 0; i < 1000 && !failed; ++i) {
    ASSERT_TRUE(log->append(0, chat("room", std::string(6000, 'a' + i % 26), i)));
    ASSERT_TRUE(c.wait_answers(static_cast<std::size_t>(i + 1)));
    failed = !c.failed().empty();
    if (!failed) ++committed;
  }
  ASSERT_TRUE(failed);
  ASSERT_GT(committed, 0u);
  const auto f = c.failed();
  EXPECT_EQ(f[0].room, "room");
  EXPECT_NE(f[0].reason.find("MDB_MAP_FULL"), std::string::npos) << f[0].reason;
  EXPECT_GE(log->stats().map_full_errors.get(), 1u);
  EXPECT_EQ(log->stats().fsync_failures.get(), 0u);

  // The writer keeps serving reads.
  ASSERT_TRUE(log->open(0, OpenRequest{"room", 3}));
  ASSERT_TRUE(log->read(0, ReadRequest{"room", 0, 2, 10, 1}));
  ASSERT_TRUE(c.wait_answers(committed + 3));
  log->stop();
  EXPECT_EQ(c.failed().size(), 1u);
  EXPECT_EQ(c.opened().at(0).last_seq, committed);
  EXPECT_EQ(c.opened().at(0).recent.size(), std::min<std::size_t>(3, committed));
  EXPECT_EQ(seqs_of(c.reads().at(0).messages), range(1, 1));
  log.reset();

  // With room to grow, the next message takes the next seq: the failed ones
  // gave theirs back.
  o.map_bytes = std::size_t{1} << 26;
  Collector c2;
  auto bigger = open_log(o, c2);
  ASSERT_TRUE(bigger->append(0, chat("room", "fits", 1)));
  bigger->start();
  bigger->stop();
  EXPECT_EQ(seqs_of(c2.committed("room")), range(committed + 1, committed + 1));
}

TEST(LogWriter, TooLargeMessageIsRefusedAlone) {
  TempDir dir;
  Collector c;
  auto log = open_log(options_for(dir.path()), c);
  ASSERT_TRUE(log->append(0, chat("room", "ok", 1)));
  ASSERT_TRUE(log->append(0, chat("room", std::string(limits::body_field_bytes_max + 1, 'x'), 2)));
  ASSERT_TRUE(log->append(0, chat("room", "ok too", 3)));
  log->start();
  log->stop();
  const auto f = c.failed();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].ref, 2u);
  std::vector<std::uint64_t> refs;
  EXPECT_EQ(seqs_of(c.committed("room", &refs)), range(1, 2));
  EXPECT_EQ(refs, (std::vector<std::uint64_t>{1, 3}));
}

// ---- stopping, back-pressure and delivery

TEST(LogWriter, StopCommitsEverythingAcceptedAndThenRefuses) {
  TempDir dir;
  Collector c;
  auto log = open_log(options_for(dir.path()), c);
  log->start();
  std::vector<std::thread> producers;
  std::atomic<std::size_t> accepted{0};
  for (int t = 0; t < 4; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        if (log->append(0, chat(fmt::format("room{}", t), "m", i))) accepted.fetch_add(1);
      }
    });
  }
  for (auto& p : producers) p.join();
  log->stop();
  EXPECT_EQ(accepted.load(), 2000u);
  std::size_t committed = 0;
  for (int t = 0; t < 4; ++t) {
    const auto msgs = c.committed(fmt::format("room{}", t));
    EXPECT_EQ(seqs_of(msgs), range(1, 500));
    committed += msgs.size();
  }
  EXPECT_EQ(committed, accepted.load());
  EXPECT_FALSE(log->append(0, chat("room0", "late", 1)));
  EXPECT_FALSE(log->open(0, OpenRequest{"room0", 1}));
  EXPECT_FALSE(log->read(0, ReadRequest{"room0", 0, 0, 1, 0}));
}

TEST(LogWriter, FullInboxRefusesWithoutBlocking) {
  TempDir dir;
  Collector c;
  auto log = open_log(options_for(dir.path()), c);
  std::size_t accepted = 0;
  const std::size_t tries = limits::inbox_requests + 100;
  for (std::size_t i = 0; i < tries; ++i) accepted += log->open(0, OpenRequest{"room", 0});
  EXPECT_EQ(accepted, limits::inbox_requests);
  EXPECT_EQ(log->inbox_full(), 100u);
  log->start();
  log->stop();
  EXPECT_EQ(c.opened().size(), limits::inbox_requests);
}

TEST(LogWriter, RefusedRepliesAreOfferedAgainInOrder) {
  TempDir dir;
  Collector c;
  auto log = open_log(options_for(dir.path()), c, /*refuse_first=*/5);
  log->start();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(log->append(0, chat("room", "m", i)));
    std::this_thread::sleep_for(200us);
  }
  ASSERT_TRUE(c.wait_answers(20));
  log->stop();
  EXPECT_EQ(c.refused(), 5);
  EXPECT_EQ(seqs_of(c.committed("room")), range(1, 20));
  EXPECT_EQ(log->stats().replies_dropped.get(), 0u);
}

TEST(LogWriter, ReplyTakenAndRefusedIsCountedAsDropped) {
  TempDir dir;
  std::atomic<int> calls{0};
  // Takes the reply by value and refuses it: the writer cannot offer it again.
  Deliver deliver = [&](std::uint32_t, std::unique_ptr<LogReply> reply) {
    calls.fetch_add(1);
    return reply == nullptr;
  };
  auto log = LogWriter::open(options_for(dir.path()), deliver);
  ASSERT_TRUE(log.is_ok());
  ASSERT_TRUE((*log)->append(0, chat("room", "m", 1)));
  (*log)->start();
  (*log)->stop();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ((*log)->stats().replies_dropped.get(), 1u);
}

}  // namespace
}  // namespace rc::persist
