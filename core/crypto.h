#pragma once
// Hashes, MACs, encodings, randomness and authenticated encryption: the only
// place that includes mbedTLS's crypto headers (TLS lives in its own file).
//
// Contract
// - The free functions are pure and thread-safe.
// - Decoders are strict: they return nullopt for any text that is not the
//   one canonical encoding of some bytes (wrong alphabet, bad or missing
//   padding, stray bits in the last character, odd hex length). Strictness
//   matters for JWTs: one token must not have several spellings.
// - Random and Aead objects are not thread-safe: give each thread its own.
//   Both may be moved, not copied.
// - Passing a nonce that is not kAeadNonceBytes long is a programmer error
//   (RC_ASSERT); a wrong key length is an operating error (Aead::create).

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace rc::crypto {

std::array<std::uint8_t, 20> sha1(std::string_view data);
std::array<std::uint8_t, 32> sha256(std::string_view data);
std::array<std::uint8_t, 32> hmac_sha256(std::string_view key, std::string_view data);

// Compares in time that depends on the length only, not on where the bytes
// differ. False on length mismatch (lengths are not secret here).
bool constant_time_equal(std::string_view a, std::string_view b);

// RFC 4648 section 4: standard alphabet, '=' padding required on decode.
std::string base64_encode(std::string_view data);
std::optional<std::string> base64_decode(std::string_view text);
// RFC 4648 section 5 ('-' and '_'), without padding; '=', '+', '/' are rejected.
std::string base64url_encode(std::string_view data);
std::optional<std::string> base64url_decode(std::string_view text);
// Lower-case on encode; decode takes an even number of [0-9a-fA-F].
std::string hex_encode(std::string_view data);
std::optional<std::string> hex_decode(std::string_view text);

// A CTR_DRBG (AES-256) seeded from the system entropy source, reseeding on
// its own. Construction aborts the process when the system has no entropy
// to give: there is no safe way to run without it.
class Random {
 public:
  Random();
  ~Random();
  Random(Random&&) noexcept;
  Random& operator=(Random&&) noexcept;

  void fill(std::uint8_t* out, std::size_t n);
  std::uint64_t u64();
  // base64url (no padding) of `bytes` random bytes: 16 bytes -> 22 characters.
  std::string token(std::size_t bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// AES-256-GCM with a 12-byte nonce and a 16-byte tag appended to the ciphertext.
// A (key, nonce) pair must never seal two different messages.
inline constexpr std::size_t kAeadKeyBytes = 32, kAeadNonceBytes = 12, kAeadTagBytes = 16;

class Aead {
 public:
  // Fails when key32 is not exactly kAeadKeyBytes long.
  static Result<Aead> create(std::string_view key32);
  ~Aead();
  Aead(Aead&&) noexcept;
  Aead& operator=(Aead&&) noexcept;

  // out = ciphertext || tag (plaintext.size() + kAeadTagBytes bytes). `out`
  // is overwritten and must not share memory with the inputs.
  void seal(std::string_view nonce12, std::string_view aad, std::string_view plaintext,
            std::string& out);
  // Verifies the tag and decrypts into `out`. False, with `out` empty, when
  // the tag does not verify (wrong key, moved record, tampering) or `sealed`
  // is shorter than a tag. `out` must not share memory with the inputs.
  bool open(std::string_view nonce12, std::string_view aad, std::string_view sealed,
            std::string& out);

 private:
  struct Impl;
  explicit Aead(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rc::crypto
