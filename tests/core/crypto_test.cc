#include "core/crypto.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace rc::crypto {
namespace {

template <std::size_t N>
std::string hex_of(const std::array<std::uint8_t, N>& digest) {
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), N));
}

std::string unhex(std::string_view text) {
  auto bytes = hex_decode(text);
  EXPECT_TRUE(bytes.has_value()) << text;
  return bytes.value_or("");
}

// ---- hashes and MACs

TEST(Crypto, Sha1KnownAnswers) {
  EXPECT_EQ(hex_of(sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(hex_of(sha1("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  // The WebSocket accept key of RFC 6455 section 1.3 hashes this string.
  EXPECT_EQ(base64_encode(std::string(
                reinterpret_cast<const char*>(sha1("dGhlIHNhbXBsZSBub25jZQ=="
                                                   "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                                  .data()),
                20)),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(Crypto, Sha256KnownAnswers) {
  EXPECT_EQ(hex_of(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex_of(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Crypto, HmacSha256Rfc4231) {
  // Test case 1.
  EXPECT_EQ(hex_of(hmac_sha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 2: a key shorter than the output.
  EXPECT_EQ(hex_of(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: a key longer than the block size is hashed first.
  EXPECT_EQ(hex_of(hmac_sha256(std::string(131, '\xaa'),
                               "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Crypto, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("signature", "signature"));
  EXPECT_FALSE(constant_time_equal("signature", "signaturE"));
  EXPECT_FALSE(constant_time_equal("Signature", "signature"));
  EXPECT_FALSE(constant_time_equal("signature", "signatur"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(constant_time_equal(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
  EXPECT_FALSE(constant_time_equal(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

// ---- base64

TEST(Crypto, Base64Rfc4648Vectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), plain) << encoded;
  }
}

TEST(Crypto, Base64UsesTheStandardAlphabet) {
  const std::string bytes("\xfb\xff\xbf\x00", 4);
  EXPECT_EQ(base64_encode(bytes), "+/+/AA==");
  EXPECT_EQ(base64_decode("+/+/AA=="), bytes);
  EXPECT_EQ(base64_decode("-_-_AA=="), std::nullopt);
}

TEST(Crypto, Base64RejectsMalformedText) {
  for (const std::string bad :
       {"Zg", "Zg=", "Zm8", "Z===", "====", "Zg===", "=Zg=", "Zm=v", "Zm9vYg==Zm9v",
        "Zm9v!A==", "Zm9 v", "Zm9v\n", "Zh==", "Zm9=", "Zm-v", "Zm_v"}) {
    EXPECT_EQ(base64_decode(bad), std::nullopt) << bad;
  }
}

TEST(Crypto, Base64UrlEdgeCases) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode(std::string("\xfb\xff\xbf", 3)), "-_-_");
  EXPECT_EQ(base64url_decode(""), "");
  EXPECT_EQ(base64url_decode("Zg"), "f");
  EXPECT_EQ(base64url_decode("Zm8"), "fo");
  EXPECT_EQ(base64url_decode("Zm9v"), "foo");
  EXPECT_EQ(base64url_decode("-_-_"), std::string("\xfb\xff\xbf", 3));
  // A JWT header.
  EXPECT_EQ(base64url_decode("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"),
            R"({"alg":"HS256","typ":"JWT"})");
}

TEST(Crypto, Base64UrlRejectsPaddingStandardCharactersAndStrayBits) {
  for (const std::string bad :
       {"Zg==", "Zg=", "Zm8=", "+/+/", "Zm9/", "Z", "Zm9vY", "Zh", "Zm9", "Zm 9"}) {
    EXPECT_EQ(base64url_decode(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(base64url_decode(std::string_view("Zm9v\0", 5)), std::nullopt);
}

TEST(Crypto, Base64RoundTripsEveryLengthAndByte) {
  std::string data;
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ(base64_decode(base64_encode(data)), data);
    EXPECT_EQ(base64url_decode(base64url_encode(data)), data);
    EXPECT_EQ(base64_encode(data).size(), (data.size() + 2) / 3 * 4);
    data.push_back(static_cast<char>(i * 97 + 13));
  }
}

// ---- hex

TEST(Crypto, Hex) {
  EXPECT_EQ(hex_encode(""), "");
  EXPECT_EQ(hex_encode(std::string("\x00\xff\x10\xab", 4)), "00ff10ab");
  EXPECT_EQ(hex_decode(""), "");
  EXPECT_EQ(hex_decode("00ff10ab"), std::string("\x00\xff\x10\xab", 4));
  EXPECT_EQ(hex_decode("00FF10AB"), std::string("\x00\xff\x10\xab", 4));
  EXPECT_EQ(hex_decode("aBcD"), std::string("\xab\xcd", 2));
  for (const std::string bad : {"0", "abc", "zz", "0x", "0g", " 00", "00 ", "-1"}) {
    EXPECT_EQ(hex_decode(bad), std::nullopt) << bad;
  }
}

// ---- AES-256-GCM

// McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16
// (AES-256, 96-bit IV, 60-byte plaintext, 20-byte AAD).
const char* const kGcmKey = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const char* const kGcmIv = "cafebabefacedbaddecaf888";
const char* const kGcmPlain =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const char* const kGcmAad = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
const char* const kGcmSealed =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
    "76fc6ece0f4e1768cddf8853bb2d551b";

TEST(Crypto, AeadKnownAnswer) {
  auto aead = Aead::create(unhex(kGcmKey));
  ASSERT_TRUE(aead.is_ok());
  std::string sealed;
  aead->seal(unhex(kGcmIv), unhex(kGcmAad), unhex(kGcmPlain), sealed);
  EXPECT_EQ(hex_encode(sealed), kGcmSealed);
  std::string opened;
  ASSERT_TRUE(aead->open(unhex(kGcmIv), unhex(kGcmAad), unhex(kGcmSealed), opened));
  EXPECT_EQ(hex_encode(opened), kGcmPlain);
}

TEST(Crypto, AeadRejectsWrongKeyLength) {
  for (std::size_t n : {0, 16, 31, 33, 64}) {
    auto aead = Aead::create(std::string(n, 'k'));
    ASSERT_FALSE(aead.is_ok()) << n;
    EXPECT_NE(aead.status().message().find("32"), std::string::npos);
  }
}

class AeadTamper : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = Aead::create(std::string(kAeadKeyBytes, '\x42'));
    ASSERT_TRUE(made.is_ok());
    aead_.emplace(std::move(made.value()));
    aead_->seal(nonce_, aad_, plain_, sealed_);
    ASSERT_EQ(sealed_.size(), plain_.size() + kAeadTagBytes);
  }
  bool opens(std::string_view nonce, std::string_view aad, std::string_view sealed) {
    out_ = "leftover";
    const bool ok = aead_->open(nonce, aad, sealed, out_);
    if (!ok) {
      EXPECT_TRUE(out_.empty());
    }
    return ok;
  }

  std::optional<Aead> aead_;
  const std::string nonce_ = std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c", 12);
  const std::string aad_ = "room physics-101 seq 17";
  const std::string plain_ = R"({"user_id":"u42","name":"Ada","text":"hello"})";
  std::string sealed_, out_;
};

TEST_F(AeadTamper, RoundTrip) {
  ASSERT_TRUE(opens(nonce_, aad_, sealed_));
  EXPECT_EQ(out_, plain_);
}

TEST_F(AeadTamper, FlippedCiphertextBitFails) {
  for (std::size_t i = 0; i < plain_.size(); i += 7) {
    std::string bad = sealed_;
    bad[i] ^= 0x01;
    EXPECT_FALSE(opens(nonce_, aad_, bad)) << i;
  }
}

TEST_F(AeadTamper, FlippedTagBitFails) {
  for (std::size_t i = plain_.size(); i < sealed_.size(); ++i) {
    std::string bad = sealed_;
    bad[i] ^= 0x80;
    EXPECT_FALSE(opens(nonce_, aad_, bad)) << i;
  }
}

TEST_F(AeadTamper, ChangedAadFails) {
  EXPECT_FALSE(opens(nonce_, "room physics-101 seq 18", sealed_));  // a record moved
  EXPECT_FALSE(opens(nonce_, "", sealed_));
  std::string bad = aad_;
  bad[0] ^= 0x20;
  EXPECT_FALSE(opens(nonce_, bad, sealed_));
}

TEST_F(AeadTamper, WrongNonceOrKeyFails) {
  std::string nonce = nonce_;
  nonce[11] ^= 1;
  EXPECT_FALSE(opens(nonce, aad_, sealed_));
  auto other = Aead::create(std::string(kAeadKeyBytes, '\x43'));
  ASSERT_TRUE(other.is_ok());
  std::string out;
  EXPECT_FALSE(other->open(nonce_, aad_, sealed_, out));
  EXPECT_TRUE(out.empty());
}

TEST_F(AeadTamper, TruncatedOrExtendedFails) {
  EXPECT_FALSE(opens(nonce_, aad_, ""));
  EXPECT_FALSE(opens(nonce_, aad_, std::string_view(sealed_).substr(0, kAeadTagBytes - 1)));
  EXPECT_FALSE(opens(nonce_, aad_, std::string_view(sealed_).substr(0, sealed_.size() - 1)));
  EXPECT_FALSE(opens(nonce_, aad_, sealed_ + "x"));
}

TEST_F(AeadTamper, EmptyPlaintextStillAuthenticates) {
  std::string sealed;
  aead_->seal(nonce_, aad_, "", sealed);
  ASSERT_EQ(sealed.size(), kAeadTagBytes);
  ASSERT_TRUE(opens(nonce_, aad_, sealed));
  EXPECT_EQ(out_, "");
  EXPECT_FALSE(opens(nonce_, "other", sealed));
}

TEST(Crypto, AeadIsMovable) {
  auto made = Aead::create(unhex(kGcmKey));
  ASSERT_TRUE(made.is_ok());
  Aead moved = std::move(made.value());
  std::string sealed;
  moved.seal(unhex(kGcmIv), unhex(kGcmAad), unhex(kGcmPlain), sealed);
  EXPECT_EQ(hex_encode(sealed), kGcmSealed);
}

// ---- Random

TEST(Crypto, RandomTokensAreDistinctAndWellFormed) {
  Random random;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string token = random.token(16);
    EXPECT_EQ(token.size(), 22u);
    EXPECT_EQ(
        token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        std::string::npos);
    EXPECT_EQ(base64url_decode(token).value_or("").size(), 16u);
    seen.insert(token);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(random.token(0), "");
}

TEST(Crypto, RandomGeneratorsDiffer) {
  Random a, b;
  std::set<std::uint64_t> values;
  for (int i = 0; i < 100; ++i) {
    values.insert(a.u64());
    values.insert(b.u64());
  }
  EXPECT_EQ(values.size(), 200u);
}

TEST(Crypto, RandomFillsLargeBuffers) {
  // Larger than one generator request (1024 bytes): filled in several calls.
  Random random;
  std::vector<std::uint8_t> buf(5000, 0);
  random.fill(buf.data(), buf.size());
  // Every byte value should appear in 5000 random bytes, and the tail too is written.
  std::set<std::uint8_t> distinct(buf.begin(), buf.end());
  EXPECT_GT(distinct.size(), 200u);
  std::size_t zeros_at_tail = 0;
  for (std::size_t i = buf.size() - 64; i < buf.size(); ++i) zeros_at_tail += buf[i] == 0;
  EXPECT_LT(zeros_at_tail, 8u);
}

TEST(Crypto, RandomIsMovable) {
  Random a;
  Random b = std::move(a);
  EXPECT_EQ(b.token(32).size(), 43u);
}

}  // namespace
}  // namespace rc::crypto
