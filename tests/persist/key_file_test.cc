#include "persist/key_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/persist/temp_dir.h"

namespace rc::persist {
namespace {

using testing::TempDir;
using testing::write_file;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string kHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
std::string key_bytes() {
  std::string k;
  for (int i = 0; i < 32; ++i) k.push_back(static_cast<char>(i));
  return k;
}

// ---- parsing

TEST(KeyFile, RawThirtyTwoBytes) {
  std::string raw(32, '\0');
  for (int i = 0; i < 32; ++i) raw[i] = static_cast<char>(255 - i);
  auto key = parse_chat_key(raw, "k");
  ASSERT_TRUE(key.is_ok());
  EXPECT_EQ(*key, raw);
  // Whitespace bytes inside a raw key are key bytes, not padding.
  const std::string spaces(32, '\n');
  EXPECT_EQ(*parse_chat_key(spaces, "k"), spaces);
}

TEST(KeyFile, HexDigits) {
  EXPECT_EQ(*parse_chat_key(kHex, "k"), key_bytes());
  std::string upper = kHex;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(*parse_chat_key(upper, "k"), key_bytes());
}

TEST(KeyFile, HexWithTrailingWhitespace) {
  EXPECT_EQ(*parse_chat_key(kHex + "\n", "k"), key_bytes());
  EXPECT_EQ(*parse_chat_key(kHex + "\r\n", "k"), key_bytes());
  EXPECT_EQ(*parse_chat_key(kHex + " \t\n\n", "k"), key_bytes());
}

TEST(KeyFile, BadLengthIsRefusedWithTheFileName) {
  for (const std::string& text :
       {std::string(), std::string(31, 'a'), std::string(33, 'a'), kHex.substr(0, 62), kHex + "00",
        kHex.substr(0, 63) + "\n", " " + kHex, std::string(64, 'x') + "\n" + "junk"}) {
    auto key = parse_chat_key(text, "/etc/rollcall/chat.key");
    ASSERT_FALSE(key.is_ok()) << text;
    EXPECT_NE(key.status().message().find("/etc/rollcall/chat.key"), std::string::npos);
    EXPECT_NE(key.status().message().find("32 raw bytes or 64 hex digits"), std::string::npos);
  }
}

TEST(KeyFile, BadHexIsRefused) {
  std::string bad = kHex;
  bad[10] = 'g';
  auto key = parse_chat_key(bad, "k");
  ASSERT_FALSE(key.is_ok());
  EXPECT_NE(key.status().message().find("hex"), std::string::npos);
  EXPECT_FALSE(parse_chat_key(bad + "\n", "k").is_ok());
  std::string inner_space = kHex;
  inner_space[20] = ' ';
  EXPECT_FALSE(parse_chat_key(inner_space, "k").is_ok());
}

// ---- files

TEST(KeyFile, ReadsRawAndHexFiles) {
  TempDir dir;
  write_file(dir.file("raw"), key_bytes());
  write_file(dir.file("hex"), kHex + "\n");
  EXPECT_EQ(*read_chat_key_file(dir.file("raw")), key_bytes());
  EXPECT_EQ(*read_chat_key_file(dir.file("hex")), key_bytes());
}

TEST(KeyFile, MissingHugeAndMalformedFilesAreErrors) {
  TempDir dir;
  auto missing = read_chat_key_file(dir.file("nope"));
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("cannot open"), std::string::npos);
  write_file(dir.file("huge"), std::string(100000, 'a'));
  EXPECT_FALSE(read_chat_key_file(dir.file("huge")).is_ok());
  write_file(dir.file("short"), "abc\n");
  EXPECT_FALSE(read_chat_key_file(dir.file("short")).is_ok());
}

TEST(KeyFile, CreatedFileIsHexNewlineMode0600) {
  TempDir dir;
  crypto::Random random;
  const std::string path = dir.file("chat.key");
  const mode_t old_umask = ::umask(0);  // the file must be 0600 even under a lax umask
  auto key = create_chat_key_file(path, random);
  ::umask(old_umask);
  ASSERT_TRUE(key.is_ok()) << key.status().message();
  EXPECT_EQ(key->size(), 32u);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string content = read_file(path);
  ASSERT_EQ(content.size(), 65u);
  EXPECT_EQ(content.back(), '\n');
  EXPECT_EQ(content.substr(0, 64), crypto::hex_encode(*key));
  EXPECT_EQ(*read_chat_key_file(path), *key);
}

TEST(KeyFile, CreateNeverReplacesAnExistingFile) {
  TempDir dir;
  crypto::Random random;
  const std::string path = dir.file("chat.key");
  write_file(path, kHex + "\n");
  auto key = create_chat_key_file(path, random);
  ASSERT_FALSE(key.is_ok());
  EXPECT_EQ(read_file(path), kHex + "\n");
}

TEST(KeyFile, TwoCreatedKeysDiffer) {
  TempDir dir;
  crypto::Random random;
  auto a = create_chat_key_file(dir.file("a"), random);
  auto b = create_chat_key_file(dir.file("b"), random);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_NE(*a, *b);
}

}  // namespace
}  // namespace rc::persist
