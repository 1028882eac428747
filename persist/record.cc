#include "persist/record.h"

#include <cstring>

#include "core/assert.h"
#include "persist/limits.h"

namespace rc::persist {
namespace {

// What the key-check record seals. Any constant works: only the tag matters.
constexpr std::string_view kKeyCheckPlain = "rollcall chat log key check";

bool room_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

void put_u64_be(std::uint64_t v, char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

std::uint64_t get_u64_be(const char* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

void append_field(std::string_view field, std::string& out) {
  RC_ASSERT(field.size() <= limits::body_field_bytes_max);
  const auto n = static_cast<std::uint32_t>(field.size());
  const char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
  out.append(len, sizeof len);
  out.append(field);
}

// Takes one length-prefixed field off the front of `in`.
bool take_field(std::string_view& in, std::string& field) {
  if (in.size() < 4) return false;
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(in[i]);
  in.remove_prefix(4);
  if (n > in.size()) return false;
  field.assign(in.data(), n);
  in.remove_prefix(n);
  return true;
}

}  // namespace

bool valid_room_id(std::string_view room) {
  if (room.empty() || room.size() > kRoomIdBytesMax) return false;
  for (char c : room) {
    if (!room_byte(c)) return false;
  }
  return true;
}

RecordKey::RecordKey(std::string_view room, std::uint64_t seq) {
  RC_ASSERT(valid_room_id(room));
  std::memcpy(bytes_.data(), room.data(), room.size());
  bytes_[room.size()] = kKeySeparator;
  put_u64_be(seq, bytes_.data() + room.size() + 1);
  size_ = room.size() + 1 + kSeqBytes;
}

std::string room_end_key(std::string_view room) {
  std::string key(room);
  key.push_back(kMetaPrefix);
  return key;
}

std::optional<ParsedKey> parse_record_key(std::string_view key) {
  if (key.size() < 1 + 1 + kSeqBytes) return std::nullopt;
  const std::size_t room_bytes = key.size() - 1 - kSeqBytes;
  if (key[room_bytes] != kKeySeparator) return std::nullopt;
  const std::string_view room = key.substr(0, room_bytes);
  if (!valid_room_id(room)) return std::nullopt;
  return ParsedKey{room, get_u64_be(key.data() + room_bytes + 1)};
}

void encode_body(const ChatMessage& msg, std::string& out) {
  append_field(msg.user_id, out);
  append_field(msg.name, out);
  append_field(msg.text, out);
  append_field(msg.client_id, out);
}

bool decode_body(std::string_view body, ChatMessage& msg) {
  return take_field(body, msg.user_id) && take_field(body, msg.name) &&
         take_field(body, msg.text) && take_field(body, msg.client_id) && body.empty();
}

std::string_view open_error_text(OpenError e) {
  switch (e) {
    case OpenError::kNone:
      return "ok";
    case OpenError::kMalformed:
      return "malformed record";
    case OpenError::kVersion:
      return "unknown record version";
    case OpenError::kAuthentication:
      return "record does not decrypt (wrong key, moved or altered record)";
  }
  return "?";
}

Result<RecordCipher> RecordCipher::create(std::string_view key32) {
  auto aead = crypto::Aead::create(key32);
  if (!aead) return aead.status();
  return RecordCipher(std::move(*aead));
}

// value = header || nonce || seal(plain); the nonce is drawn here so that no
// caller can ever pass the same one twice.
void RecordCipher::seal_with(std::string_view header, std::string_view aad, std::string_view plain,
                             std::string& value) {
  char nonce[crypto::kAeadNonceBytes];
  random_.fill(reinterpret_cast<std::uint8_t*>(nonce), sizeof nonce);
  value.assign(header);
  value.append(nonce, sizeof nonce);
  // Aead::seal overwrites its output, so seal into a scratch buffer first.
  aead_.seal(std::string_view(nonce, sizeof nonce), aad, plain, plain_);
  value.append(plain_);
}

void RecordCipher::seal(std::string_view key, const ChatMessage& msg, std::string& value) {
  char header[1 + kTsBytes];
  header[0] = static_cast<char>(kRecordVersion);
  put_u64_be(static_cast<std::uint64_t>(msg.ts_ms), header + 1);
  aad_.assign(key);
  aad_.append(header, sizeof header);
  body_.clear();
  encode_body(msg, body_);
  seal_with(std::string_view(header, sizeof header), aad_, body_, value);
}

OpenError RecordCipher::open(std::string_view key, std::string_view value, ChatMessage& msg) {
  if (value.size() < kRecordHeaderBytes + crypto::kAeadTagBytes) return OpenError::kMalformed;
  if (static_cast<std::uint8_t>(value[0]) != kRecordVersion) return OpenError::kVersion;
  const std::string_view header = value.substr(0, 1 + kTsBytes);
  const std::string_view nonce = value.substr(1 + kTsBytes, crypto::kAeadNonceBytes);
  aad_.assign(key);
  aad_.append(header);
  if (!aead_.open(nonce, aad_, value.substr(kRecordHeaderBytes), body_)) {
    return OpenError::kAuthentication;
  }
  if (!decode_body(body_, msg)) return OpenError::kMalformed;
  msg.ts_ms = static_cast<std::int64_t>(get_u64_be(header.data() + 1));
  return OpenError::kNone;
}

void RecordCipher::seal_key_check(std::string& value) {
  const char header[1] = {static_cast<char>(kRecordVersion)};
  aad_.assign(kKeyCheckKey);
  aad_.append(header, sizeof header);
  seal_with(std::string_view(header, sizeof header), aad_, kKeyCheckPlain, value);
}

bool RecordCipher::key_check_opens(std::string_view value) {
  constexpr std::size_t header_bytes = 1;
  if (value.size() < header_bytes + crypto::kAeadNonceBytes + crypto::kAeadTagBytes) return false;
  if (static_cast<std::uint8_t>(value[0]) != kRecordVersion) return false;
  aad_.assign(kKeyCheckKey);
  aad_.append(value.substr(0, header_bytes));
  const std::string_view nonce = value.substr(header_bytes, crypto::kAeadNonceBytes);
  return aead_.open(nonce, aad_, value.substr(header_bytes + crypto::kAeadNonceBytes), body_) &&
         body_ == kKeyCheckPlain;
}

}  // namespace rc::persist
