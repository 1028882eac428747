#pragma once
// The on-disk format of the chat log: keys, record values, the key-check
// record, and their encryption. Pure functions and one small sealing object;
// no I/O. docs/PERSISTENCE.md describes the format for operators.
//
// Keys
//   message:   room id bytes || 0x00 || seq (u64, big-endian)
//   meta:      0x01 || name            (e.g. "\x01keycheck")
// Room ids are 1-64 bytes of [A-Za-z0-9_-], all above 0x01, so the 0x00
// separator sorts below every room byte: the keys of one room are one
// contiguous range in seq order, and no room's range interleaves with a room
// whose id extends it ("ab" < "ab-x": "ab\0..." < "ab\x01" < "ab-..."). Meta
// keys sort before every room.
//
// Record value (version 1)
//   version (1 byte) || ts_ms (i64, big-endian) || nonce (12 bytes) ||
//   AES-256-GCM(body) (ciphertext || 16-byte tag)
//   body = 4 fields, each u32 big-endian length || bytes:
//          user_id, name, text, client_id
//   AAD  = the record's key || version || ts_ms   (binds room, seq and the
//          clear header: a record moved to another key, or with an edited
//          time, fails to decrypt)
//
// Nonces are 12 bytes from a CTR_DRBG per record. Random nonces repeat with
// probability about n^2 / 2^97 after n records under one key (2^-33 at four
// billion records), and unlike a counter they need no state that survives a
// restart, a restored backup or a second log opened with the same key file.
//
// Contract: encode/decode functions allocate only into the caller's buffers;
// decoders never read past their input and reject anything malformed.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/crypto.h"
#include "core/status.h"
#include "persist/chat_log.h"

namespace rc::persist {

inline constexpr std::uint8_t kRecordVersion = 1;
inline constexpr char kKeySeparator = '\x00';
inline constexpr char kMetaPrefix = '\x01';
inline constexpr std::size_t kSeqBytes = 8;
inline constexpr std::size_t kTsBytes = 8;
inline constexpr std::size_t kRecordHeaderBytes = 1 + kTsBytes + crypto::kAeadNonceBytes;
inline constexpr std::size_t kRoomIdBytesMax = 64;
inline constexpr std::size_t kRecordKeyBytesMax = kRoomIdBytesMax + 1 + kSeqBytes;
inline constexpr std::string_view kKeyCheckKey = "\x01keycheck";

// 1-64 bytes of [A-Za-z0-9_-].
bool valid_room_id(std::string_view room);

// A message key built in place (no allocation).
class RecordKey {
 public:
  RecordKey(std::string_view room, std::uint64_t seq);  // room must be valid (asserted)
  std::string_view view() const { return std::string_view(bytes_.data(), size_); }

 private:
  std::array<char, kRecordKeyBytesMax> bytes_{};
  std::size_t size_ = 0;
};

// The smallest key above every message key of `room`: room || 0x01.
std::string room_end_key(std::string_view room);

struct ParsedKey {
  std::string_view room;  // points into the key
  std::uint64_t seq = 0;
};
// nullopt for meta keys and anything that is not a well-formed message key.
std::optional<ParsedKey> parse_record_key(std::string_view key);

// Appends the body of msg (user_id, name, text, client_id) to out.
void encode_body(const ChatMessage& msg, std::string& out);
// Fills the four text fields of msg; false when body is malformed (a short
// length, trailing bytes).
bool decode_body(std::string_view body, ChatMessage& msg);

// Why a record did not open.
enum class OpenError : std::uint8_t { kNone, kMalformed, kVersion, kAuthentication };
std::string_view open_error_text(OpenError e);

// Seals and opens record values and the key-check record with one key.
// Not thread-safe (it owns a DRBG and scratch buffers): one per thread.
class RecordCipher {
 public:
  // Fails when key32 is not 32 bytes.
  static Result<RecordCipher> create(std::string_view key32);

  // Writes the value for `msg` stored under `key` into `value` (replaced).
  void seal(std::string_view key, const ChatMessage& msg, std::string& value);
  // Decrypts the value stored under `key`; fills msg (ts_ms and text fields;
  // seq is left to the caller, who has it from the key).
  OpenError open(std::string_view key, std::string_view value, ChatMessage& msg);

  // The key-check record: an AEAD of a constant. key_check_opens() is false when
  // this key did not write `value`.
  void seal_key_check(std::string& value);
  bool key_check_opens(std::string_view value);

 private:
  explicit RecordCipher(crypto::Aead aead) : aead_(std::move(aead)) {}
  void seal_with(std::string_view header, std::string_view aad, std::string_view plain,
                 std::string& value);

  crypto::Aead aead_;
  crypto::Random random_;
  std::string body_, aad_, plain_;
};

}  // namespace rc::persist
