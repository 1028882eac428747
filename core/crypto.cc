#include "core/crypto.h"

#include <fmt/format.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/assert.h"

namespace rc::crypto {
namespace {

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* bytes_of(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

// ---- base64 / base64url (RFC 4648)

constexpr char kBase64Std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::int8_t kInvalid = -1;

using DecodeTable = std::array<std::int8_t, 256>;

constexpr DecodeTable make_decode_table(const char (&alphabet)[65]) {
  DecodeTable table{};
  for (auto& v : table) v = kInvalid;
  for (int i = 0; i < 64; ++i)
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  return table;
}

constexpr DecodeTable kDecodeStd = make_decode_table(kBase64Std);
constexpr DecodeTable kDecodeUrl = make_decode_table(kBase64Url);

std::string encode64(std::string_view data, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  const auto* in = bytes_of(data);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const std::uint32_t v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
    out.push_back(alphabet[v >> 18]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  const std::size_t rest = data.size() - i;
  if (rest == 0) return out;
  const std::uint32_t v = (in[i] << 16) | (rest == 2 ? in[i + 1] << 8 : 0);
  out.push_back(alphabet[v >> 18]);
  out.push_back(alphabet[(v >> 12) & 63]);
  if (rest == 2) out.push_back(alphabet[(v >> 6) & 63]);
  if (pad) out.append(3 - rest, '=');
  return out;
}

// Decodes unpadded text. A final group of 2 or 3 characters carries 1 or 2
// bytes; its unused low bits must be zero, or the same bytes would have
// several valid spellings.
std::optional<std::string> decode64(std::string_view text, const DecodeTable& table) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const std::int8_t v = table[static_cast<unsigned char>(c)];
    if (v == kInvalid) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The seeding failure of a generator leaves nothing safe to do.
void require_entropy(int rc) {
  if (rc == 0) return;
  std::fprintf(stderr, "rollcall: cannot seed the random generator (mbedTLS error -0x%04x)\n",
               static_cast<unsigned>(-rc));
  std::abort();
}

}  // namespace

// ---- hashes and MACs

std::array<std::uint8_t, 20> sha1(std::string_view data) {
  std::array<std::uint8_t, 20> out;
  RC_ASSERT(mbedtls_sha1_ret(bytes_of(data), data.size(), out.data()) == 0);
  return out;
}

std::array<std::uint8_t, 32> sha256(std::string_view data) {
  std::array<std::uint8_t, 32> out;
  RC_ASSERT(mbedtls_sha256_ret(bytes_of(data), data.size(), out.data(), /*is224=*/0) == 0);
  return out;
}

std::array<std::uint8_t, 32> hmac_sha256(std::string_view key, std::string_view data) {
  std::array<std::uint8_t, 32> out;
  const mbedtls_md_info_t* md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  RC_ASSERT(md != nullptr);
  RC_ASSERT(
      mbedtls_md_hmac(md, bytes_of(key), key.size(), bytes_of(data), data.size(), out.data()) == 0);
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  // Every byte is visited whatever the differences; the volatile accumulator
  // keeps the compiler from turning the loop into an early-exit memcmp.
  // (mbedTLS 2.28's mbedtls_ct_memcmp header lacks C++ linkage guards.)
  volatile unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = diff | static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

// ---- encodings

std::string base64_encode(std::string_view data) {
  return encode64(data, kBase64Std, true);
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  // Any other '=' (inside, or a third one) is rejected by the table.
  return decode64(text.substr(0, text.size() - pad), kDecodeStd);
}

std::string base64url_encode(std::string_view data) {
  return encode64(data, kBase64Url, false);
}

std::optional<std::string> base64url_decode(std::string_view text) {
  return decode64(text, kDecodeUrl);
}

std::string hex_encode(std::string_view data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (unsigned char c : data) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::optional<std::string> hex_decode(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const int hi = hex_value(text[i]), lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

// ---- Random

struct Random::Impl {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  Impl() {
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
  }
  ~Impl() {
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
  }
};

Random::Random() : impl_(std::make_unique<Impl>()) {
  // The personalisation string makes generators seeded in the same instant
  // (one per shard at start-up) differ even if the entropy source repeated.
  static std::atomic<std::uint64_t> generators{0};
  const std::string custom = fmt::format("rollcall random {} {}", generators.fetch_add(1),
                                         static_cast<void*>(impl_.get()));
  require_entropy(mbedtls_ctr_drbg_seed(&impl_->drbg, mbedtls_entropy_func, &impl_->entropy,
                                        bytes_of(custom), custom.size()));
}

Random::~Random() = default;
Random::Random(Random&&) noexcept = default;
Random& Random::operator=(Random&&) noexcept = default;

void Random::fill(std::uint8_t* out, std::size_t n) {
  RC_ASSERT(impl_ != nullptr);
  // The generator hands out at most MBEDTLS_CTR_DRBG_MAX_REQUEST bytes per call.
  while (n > 0) {
    const std::size_t chunk = n < MBEDTLS_CTR_DRBG_MAX_REQUEST ? n : MBEDTLS_CTR_DRBG_MAX_REQUEST;
    require_entropy(mbedtls_ctr_drbg_random(&impl_->drbg, out, chunk));
    out += chunk;
    n -= chunk;
  }
}

std::uint64_t Random::u64() {
  std::uint8_t bytes[8];
  fill(bytes, sizeof bytes);
  std::uint64_t v;
  std::memcpy(&v, bytes, sizeof v);
  return v;
}

std::string Random::token(std::size_t bytes) {
  std::string raw(bytes, '\0');
  fill(reinterpret_cast<std::uint8_t*>(raw.data()), raw.size());
  return base64url_encode(raw);
}

// ---- Aead

struct Aead::Impl {
  mbedtls_gcm_context gcm;
  Impl() { mbedtls_gcm_init(&gcm); }
  ~Impl() { mbedtls_gcm_free(&gcm); }
};

Aead::Aead(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Aead::~Aead() = default;
Aead::Aead(Aead&&) noexcept = default;
Aead& Aead::operator=(Aead&&) noexcept = default;

Result<Aead> Aead::create(std::string_view key32) {
  if (key32.size() != kAeadKeyBytes) {
    return Status::error(
        fmt::format("AES-256-GCM key must be {} bytes, got {}", kAeadKeyBytes, key32.size()));
  }
  auto impl = std::make_unique<Impl>();
  const int rc =
      mbedtls_gcm_setkey(&impl->gcm, MBEDTLS_CIPHER_ID_AES, bytes_of(key32), kAeadKeyBytes * 8);
  if (rc != 0) {
    return Status::error(fmt::format("AES-256-GCM key setup failed (mbedTLS error -0x{:04x})",
                                     static_cast<unsigned>(-rc)));
  }
  return Aead(std::move(impl));
}

void Aead::seal(std::string_view nonce12, std::string_view aad, std::string_view plaintext,
                std::string& out) {
  RC_ASSERT(impl_ != nullptr);
  RC_ASSERT(nonce12.size() == kAeadNonceBytes);
  out.resize(plaintext.size() + kAeadTagBytes);
  unsigned char* cipher = bytes_of(out);
  const int rc = mbedtls_gcm_crypt_and_tag(&impl_->gcm, MBEDTLS_GCM_ENCRYPT, plaintext.size(),
                                           bytes_of(nonce12), nonce12.size(), bytes_of(aad),
                                           aad.size(), bytes_of(plaintext), cipher, kAeadTagBytes,
                                           cipher + plaintext.size());
  RC_ASSERT(rc == 0);  // only fails on bad lengths, which are checked above
}

bool Aead::open(std::string_view nonce12, std::string_view aad, std::string_view sealed,
                std::string& out) {
  RC_ASSERT(impl_ != nullptr);
  RC_ASSERT(nonce12.size() == kAeadNonceBytes);
  out.clear();
  if (sealed.size() < kAeadTagBytes) return false;
  const std::size_t length = sealed.size() - kAeadTagBytes;
  out.resize(length);
  const int rc = mbedtls_gcm_auth_decrypt(&impl_->gcm, length, bytes_of(nonce12), nonce12.size(),
                                          bytes_of(aad), aad.size(), bytes_of(sealed) + length,
                                          kAeadTagBytes, bytes_of(sealed), bytes_of(out));
  if (rc != 0) {
    out.clear();  // never hand out plaintext that did not authenticate
    return false;
  }
  return true;
}

}  // namespace rc::crypto
