#include "persist/lmdb_env.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/persist/temp_dir.h"

namespace rc::persist::db {
namespace {

using testing::TempDir;

std::unique_ptr<Env> open_env(const std::string& dir, std::size_t map_bytes = 1 << 24) {
  auto env = Env::open(dir, EnvOptions{map_bytes, false});
  EXPECT_TRUE(env.is_ok()) << env.status().message();
  return std::move(*env);
}

// Built with append: GCC 12 warns (-Wrestrict, a false positive) on "v:" + k.
std::string value_of(std::string_view key) {
  return std::string("v:").append(key);
}

void put_all(Env& env, const std::vector<std::string>& keys) {
  auto txn = env.begin_write();
  ASSERT_TRUE(txn.is_ok());
  for (const auto& k : keys) ASSERT_TRUE(txn->put(k, value_of(k)).is_ok());
  ASSERT_TRUE(txn->commit().is_ok());
}

TEST(LmdbEnv, PutGetDeleteCommitAndAbort) {
  TempDir dir;
  auto env = open_env(dir.path());
  {
    auto txn = env->begin_write();
    ASSERT_TRUE(txn->put("a", "1").is_ok());
    ASSERT_TRUE(txn->put(std::string_view("b\0c", 3), std::string_view("\0\1", 2)).is_ok());
    ASSERT_TRUE(txn->commit().is_ok());
  }
  {
    auto txn = env->begin_write();
    ASSERT_TRUE(txn->put("aborted", "x").is_ok());
    // Destroyed without commit: aborted.
  }
  auto txn = env->begin_read();
  ASSERT_TRUE(txn.is_ok());
  EXPECT_EQ(**txn->get("a"), "1");
  EXPECT_EQ(**txn->get(std::string_view("b\0c", 3)), std::string_view("\0\1", 2));
  EXPECT_FALSE(txn->get("aborted")->has_value());
  txn->abort();

  auto w = env->begin_write();
  EXPECT_TRUE(*w->del("a"));
  EXPECT_FALSE(*w->del("a"));
  ASSERT_TRUE(w->commit().is_ok());
  auto r = env->begin_read();
  EXPECT_FALSE(r->get("a")->has_value());
}

TEST(LmdbEnv, InsertRefusesExistingKeysAndAppendNeedsTheGreatestKey) {
  TempDir dir;
  auto env = open_env(dir.path());
  put_all(*env, {"b", "d"});
  auto txn = env->begin_write();
  EXPECT_FALSE(txn->put("b", "again", PutMode::kInsert).is_ok());
  txn->abort();
  txn = env->begin_write();
  EXPECT_FALSE(txn->put("c", "x", PutMode::kAppend).is_ok());
  txn->abort();
  txn = env->begin_write();
  ASSERT_TRUE(txn->put("e", "x", PutMode::kAppend).is_ok());
  ASSERT_TRUE(txn->put("f", "x", PutMode::kAppend).is_ok());
  ASSERT_TRUE(txn->put("c", "x", PutMode::kInsert).is_ok());
  ASSERT_TRUE(txn->commit().is_ok());
  auto r = env->begin_read();
  for (const char* k : {"b", "c", "d", "e", "f"}) EXPECT_TRUE(r->get(k)->has_value()) << k;
}

TEST(LmdbEnv, CursorSeeksAndWalksInKeyOrder) {
  TempDir dir;
  auto env = open_env(dir.path());
  put_all(*env, {"b", "d", "f"});
  auto txn = env->begin_read();
  auto c = txn->cursor();
  ASSERT_TRUE(c.is_ok());
  ASSERT_TRUE(c->seek("c"));
  EXPECT_EQ(c->key(), "d");
  EXPECT_EQ(c->value(), "v:d");
  ASSERT_TRUE(c->prev());
  EXPECT_EQ(c->key(), "b");
  EXPECT_FALSE(c->prev());
  EXPECT_TRUE(c->status().is_ok());
  ASSERT_TRUE(c->seek("d"));
  EXPECT_EQ(c->key(), "d");
  ASSERT_TRUE(c->next());
  EXPECT_EQ(c->key(), "f");
  EXPECT_FALSE(c->next());
  EXPECT_FALSE(c->seek("g"));
  ASSERT_TRUE(c->last());
  EXPECT_EQ(c->key(), "f");
  ASSERT_TRUE(c->first());
  EXPECT_EQ(c->key(), "b");
  EXPECT_TRUE(c->status().is_ok());
}

TEST(LmdbEnv, FullMapIsReportedAsSuchAndTheEnvKeepsWorking) {
  TempDir dir;
  auto env = open_env(dir.path(), 64 * 1024);
  put_all(*env, {"keep"});
  const std::string big(4000, 'x');
  bool full = false;
  for (int i = 0; i < 100 && !full; ++i) {
    auto txn = env->begin_write();
    const std::string key = fmt::format("k{}", 1000 + i);
    Status s = txn->put(key, big);
    if (s) s = txn->commit();
    if (!s) {
      full = true;
      EXPECT_TRUE(txn->map_full()) << s.message();
      EXPECT_NE(s.message().find("MDB_MAP_FULL"), std::string::npos) << s.message();
    }
  }
  ASSERT_TRUE(full);
  auto r = env->begin_read();
  EXPECT_EQ(**r->get("keep"), "v:keep");
}

TEST(LmdbEnv, ReadOnlyNeedsAnExistingDatabase) {
  TempDir dir;
  EXPECT_FALSE(Env::open(dir.path(), EnvOptions{1 << 20, true}).is_ok());
  {
    auto env = open_env(dir.path());
    put_all(*env, {"a"});
  }
  auto ro = Env::open(dir.path(), EnvOptions{1 << 20, true});
  ASSERT_TRUE(ro.is_ok()) << ro.status().message();
  auto txn = (*ro)->begin_read();
  EXPECT_EQ(**txn->get("a"), "v:a");
  EXPECT_FALSE((*ro)->begin_write().is_ok());
}

TEST(LmdbEnv, CompactCopyHoldsTheSameData) {
  TempDir dir, out;
  auto env = open_env(dir.path());
  std::vector<std::string> keys;
  for (int i = 0; i < 500; ++i) keys.push_back("key" + std::to_string(i));
  put_all(*env, keys);
  {
    auto txn = env->begin_write();
    for (int i = 0; i < 400; ++i) ASSERT_TRUE(*txn->del(keys[i]));
    ASSERT_TRUE(txn->commit().is_ok());
  }
  ASSERT_TRUE(env->copy_compact(out.path()).is_ok());
  EXPECT_LE(std::filesystem::file_size(out.path() + "/data.mdb"),
            std::filesystem::file_size(dir.path() + "/data.mdb"));
  auto copy = Env::open(out.path(), EnvOptions{1 << 20, true});
  ASSERT_TRUE(copy.is_ok());
  auto txn = (*copy)->begin_read();
  EXPECT_FALSE(txn->get(keys[0])->has_value());
  EXPECT_EQ(**txn->get(keys[499]), value_of(keys[499]));
  EXPECT_GT(env->map_bytes(), 0u);
  EXPECT_GT(env->used_bytes(), 0u);
}

}  // namespace
}  // namespace rc::persist::db
