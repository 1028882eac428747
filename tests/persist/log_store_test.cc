#include "persist/log_store.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/persist/temp_dir.h"

namespace rc::persist {
namespace {

using testing::TempDir;
using testing::write_file;

StoreOptions options_for(const std::string& dir, std::string key_file = {}) {
  StoreOptions o;
  o.data_dir = dir;
  o.key_file = std::move(key_file);
  o.map_bytes = 1 << 26;
  return o;
}

std::unique_ptr<LogStore> open_store(const StoreOptions& o) {
  auto store = LogStore::open(o);
  EXPECT_TRUE(store.is_ok()) << store.status().message();
  return store.is_ok() ? std::move(*store) : nullptr;
}

ChatMessage message(std::uint64_t seq, std::string text) {
  ChatMessage m;
  m.seq = seq;
  m.ts_ms = 1763798400000 + static_cast<std::int64_t>(seq);
  m.user_id = fmt::format("u{}", seq % 3);
  m.name = fmt::format("Name {}", seq % 3);
  m.text = std::move(text);
  m.client_id = seq % 2 ? fmt::format("c-{}", seq) : "";
  return m;
}

// Writes seqs first..last of room in one transaction.
void write_range(LogStore& store, std::string_view room, std::uint64_t first, std::uint64_t last) {
  std::vector<ChatMessage> msgs;
  for (std::uint64_t s = first; s <= last; ++s) {
    msgs.push_back(message(s, fmt::format("{} message {}", room, s)));
  }
  std::vector<NewRecord> records;
  for (const auto& m : msgs) records.push_back(NewRecord{room, &m});
  WriteOutcome w = store.write(records, {});
  ASSERT_TRUE(w.status.is_ok()) << w.status.message();
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

// ---- opening and keys

TEST(LogStore, NewLogCreatesItsKeyFile) {
  TempDir dir;
  const std::string data = dir.file("data");  // created by open()
  auto store = open_store(options_for(data));
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->created_key());
  EXPECT_EQ(store->key_path(), fmt::format("{}/chat.key", data));
  struct stat st {};
  ASSERT_EQ(::stat(store->key_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(std::filesystem::file_size(store->key_path()), 65u);
  write_range(*store, "room", 1, 3);
  store.reset();
  // Reopening uses the created key and does not create another.
  auto again = open_store(options_for(data));
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->created_key());
  auto page = again->reader()->page("room", 0, 0, 10);
  EXPECT_EQ(seqs_of(page->messages), range(1, 3));
}

TEST(LogStore, WrongKeyDoesNotOpenTheLog) {
  TempDir dir;
  write_file(dir.file("a.key"), std::string(64, 'a') + "\n");
  write_file(dir.file("b.key"), std::string(64, 'b') + "\n");
  {
    auto store = open_store(options_for(dir.file("data"), dir.file("a.key")));
    ASSERT_TRUE(store);
    EXPECT_FALSE(store->created_key());
    write_range(*store, "room", 1, 1);
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("data/chat.key")));
  auto wrong = LogStore::open(options_for(dir.file("data"), dir.file("b.key")));
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_NE(wrong.status().message().find(
                fmt::format("the chat key does not open the log in {}", dir.file("data"))),
            std::string::npos)
      << wrong.status().message();
  // Nor does the default key path, which does not exist for this log.
  auto none = LogStore::open(options_for(dir.file("data")));
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.status().message().find("is missing"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("data/chat.key")));
  // The right key still works.
  EXPECT_TRUE(LogStore::open(options_for(dir.file("data"), dir.file("a.key"))).is_ok());
}

TEST(LogStore, MalformedKeyFileIsAnError) {
  TempDir dir;
  write_file(dir.file("bad.key"), "not a key\n");
  auto store = LogStore::open(options_for(dir.file("data"), dir.file("bad.key")));
  ASSERT_FALSE(store.is_ok());
  EXPECT_NE(store.status().message().find("bad.key"), std::string::npos);
  auto missing = LogStore::open(options_for(dir.file("data"), dir.file("missing.key")));
  EXPECT_FALSE(missing.is_ok());
}

TEST(LogStore, ReadOnlyCreatesNothing) {
  TempDir dir;
  StoreOptions o = options_for(dir.file("data"));
  o.read_only = true;
  auto none = LogStore::open(o);
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.status().message().find("no chat log"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("data/chat.key")));
  { open_store(options_for(dir.file("data"))); }
  auto ro = LogStore::open(o);
  EXPECT_TRUE(ro.is_ok()) << ro.status().message();
}

// ---- writes and reads

TEST(LogStore, RoomsListsBoundsInKeyOrder) {
  TempDir dir;
  auto store = open_store(options_for(dir.path()));
  write_range(*store, "b", 1, 4);
  write_range(*store, "a", 1, 2);  // below the greatest key: plain puts
  write_range(*store, "a-b", 1, 7);
  write_range(*store, "ab", 3, 5);
  auto rooms = store->reader()->rooms();
  ASSERT_TRUE(rooms.is_ok());
  ASSERT_EQ(rooms->size(), 4u);
  EXPECT_EQ((*rooms)[0].room, "a");
  EXPECT_EQ((*rooms)[0].last_seq, 2u);
  EXPECT_EQ((*rooms)[1].room, "a-b");
  EXPECT_EQ((*rooms)[1].last_seq, 7u);
  EXPECT_EQ((*rooms)[2].room, "ab");
  EXPECT_EQ((*rooms)[2].first_seq, 3u);
  EXPECT_EQ((*rooms)[2].last_seq, 5u);
  EXPECT_EQ((*rooms)[3].room, "b");
  auto reader = store->reader();
  auto b = reader->bounds("ab");
  EXPECT_EQ(b->first_seq, 3u);
  EXPECT_EQ(b->last_seq, 5u);
  auto none = reader->bounds("aa");
  EXPECT_EQ(none->first_seq, 0u);
  EXPECT_EQ(none->last_seq, 0u);
  EXPECT_EQ(*reader->count("a-b"), 7u);
  EXPECT_EQ(*reader->count("zz"), 0u);
}

TEST(LogStore, PagesAreTheNewestWithinBoundsAscending) {
  TempDir dir;
  auto store = open_store(options_for(dir.path()));
  write_range(*store, "a", 1, 3);
  write_range(*store, "room", 1, 25);
  write_range(*store, "room-2", 1, 3);
  auto reader = store->reader();
  auto p = reader->page("room", 0, 0, 10);
  EXPECT_EQ(seqs_of(p->messages), range(16, 25));
  EXPECT_FALSE(p->complete);
  p = reader->page("room", 0, 16, 10);
  EXPECT_EQ(seqs_of(p->messages), range(6, 15));
  EXPECT_FALSE(p->complete);
  p = reader->page("room", 0, 6, 10);
  EXPECT_EQ(seqs_of(p->messages), range(1, 5));
  EXPECT_TRUE(p->complete);
  p = reader->page("room", 20, 0, 100);
  EXPECT_EQ(seqs_of(p->messages), range(21, 25));
  EXPECT_TRUE(p->complete);
  p = reader->page("room", 5, 10, 2);
  EXPECT_EQ(seqs_of(p->messages), range(8, 9));
  EXPECT_FALSE(p->complete);
  p = reader->page("room", 5, 10, 4);
  EXPECT_EQ(seqs_of(p->messages), range(6, 9));
  EXPECT_TRUE(p->complete);
  p = reader->page("room", 0, 0, 0);
  EXPECT_TRUE(p->messages.empty());
  EXPECT_FALSE(p->complete);
  p = reader->page("room", 0, 1, 10);
  EXPECT_TRUE(p->messages.empty());
  EXPECT_TRUE(p->complete);
  p = reader->page("nothing", 0, 0, 10);
  EXPECT_TRUE(p->messages.empty());
  EXPECT_TRUE(p->complete);
  // Contents come back as written.
  p = reader->page("room", 11, 13, 10);
  ASSERT_EQ(p->messages.size(), 1u);
  const ChatMessage want = message(12, "room message 12");
  EXPECT_EQ(p->messages[0].seq, 12u);
  EXPECT_EQ(p->messages[0].ts_ms, want.ts_ms);
  EXPECT_EQ(p->messages[0].user_id, want.user_id);
  EXPECT_EQ(p->messages[0].name, want.name);
  EXPECT_EQ(p->messages[0].text, want.text);
  EXPECT_EQ(p->messages[0].client_id, want.client_id);
}

TEST(LogStore, ScanVisitsInSeqOrderFromAfter) {
  TempDir dir;
  auto store = open_store(options_for(dir.path()));
  write_range(*store, "room", 1, 9);
  write_range(*store, "room0", 1, 2);
  std::vector<std::uint64_t> seen;
  auto visit = [&](std::uint64_t seq, OpenError err, const ChatMessage& m) {
    EXPECT_EQ(err, OpenError::kNone);
    EXPECT_EQ(m.seq, seq);
    seen.push_back(seq);
    return seq < 7;
  };
  ASSERT_TRUE(store->reader()->scan("room", 3, visit).is_ok());
  EXPECT_EQ(seen, range(4, 7));
}

TEST(LogStore, TrimsDeleteTheRangeOnly) {
  TempDir dir;
  auto store = open_store(options_for(dir.path()));
  write_range(*store, "room", 1, 20);
  write_range(*store, "other", 1, 5);
  const TrimRange trims[] = {{"room", 1, 12}, {"other", 1, 2}};
  WriteOutcome w = store->write({}, trims);
  ASSERT_TRUE(w.status.is_ok());
  EXPECT_EQ(w.deleted, 14u);
  auto reader = store->reader();
  EXPECT_EQ(reader->bounds("room")->first_seq, 13u);
  EXPECT_EQ(reader->bounds("room")->last_seq, 20u);
  EXPECT_EQ(*reader->count("other"), 3u);
}

TEST(LogStore, AFailedWriteLeavesNothingBehind) {
  TempDir dir;
  auto store = open_store(options_for(dir.path()));
  write_range(*store, "room", 1, 2);
  // seq 3 is new, seq 2 exists: the insert of 2 fails the whole batch.
  const ChatMessage m3 = message(3, "three"), m2 = message(2, "two again");
  const NewRecord records[] = {{"room", &m3}, {"room", &m2}};
  WriteOutcome w = store->write(records, {});
  EXPECT_FALSE(w.status.is_ok());
  EXPECT_FALSE(w.map_full);
  auto p = store->reader()->page("room", 0, 0, 10);
  EXPECT_EQ(seqs_of(p->messages), range(1, 2));
  EXPECT_EQ(p->messages[1].text, "room message 2");
  // And the store still appends afterwards.
  write_range(*store, "room", 3, 4);
  EXPECT_EQ(store->reader()->bounds("room")->last_seq, 4u);
}

}  // namespace
}  // namespace rc::persist
