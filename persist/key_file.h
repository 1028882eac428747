#pragma once
// The chat key file (PROTOCOL.md section 5): 32 raw bytes, or 64 hex digits
// with optional trailing whitespace. Anything else is refused with a message
// that names the file and says what was wrong.
//
// Contract
// - parse_chat_key() is pure: a file of exactly 32 bytes is a raw key
//   (whatever the bytes); otherwise trailing whitespace (space, \t, \n, \v,
//   \f, \r) is removed and exactly 64 hex digits (either case) must remain.
// - create_chat_key_file() never replaces an existing file (O_EXCL); the new
//   file has mode 0600, holds 64 lower-case hex digits and a newline, and is
//   synced (file and directory) before the function returns.
// - All functions return the 32 key bytes or a Status; none logs.

#include <string>
#include <string_view>

#include "core/crypto.h"
#include "core/status.h"

namespace rc::persist {

// `what` names the source in error messages (usually the path).
Result<std::string> parse_chat_key(std::string_view file_bytes, std::string_view what);

// Reads and parses the key file at path.
Result<std::string> read_chat_key_file(const std::string& path);

// Creates a new random key at path (see the contract). Fails if the file
// exists or cannot be written.
Result<std::string> create_chat_key_file(const std::string& path, crypto::Random& random);

}  // namespace rc::persist
