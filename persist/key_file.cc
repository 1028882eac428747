#include "persist/key_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "persist/limits.h"

namespace rc::persist {
namespace {

constexpr std::size_t kHexDigits = 2 * crypto::kAeadKeyBytes;
constexpr mode_t kKeyFileMode = 0600;

bool is_trailing_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

std::string errno_text(int err) {
  return std::strerror(err);
}

Status write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::error(
          fmt::format("chat key file {}: cannot write: {}", path, errno_text(errno)));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::ok();
}

// Makes the new directory entry durable: without it a crash right after the
// first start could leave a log whose key file never existed.
void sync_parent_dir(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

Result<std::string> parse_chat_key(std::string_view file_bytes, std::string_view what) {
  if (file_bytes.size() == crypto::kAeadKeyBytes) return std::string(file_bytes);
  std::string_view text = file_bytes;
  while (!text.empty() && is_trailing_space(text.back())) text.remove_suffix(1);
  if (text.size() != kHexDigits) {
    return Status::error(
        fmt::format("chat key file {}: expected 32 raw bytes or 64 hex digits, found {} bytes",
                    what, file_bytes.size()));
  }
  auto key = crypto::hex_decode(text);
  if (!key) {
    return Status::error(
        fmt::format("chat key file {}: 64 characters but not all are hex digits", what));
  }
  return std::move(*key);
}

Result<std::string> read_chat_key_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::error(fmt::format("chat key file {}: cannot open: {}", path, errno_text(errno)));
  }
  std::string bytes;
  char buf[limits::key_file_bytes_max + 1];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Status::error(fmt::format("chat key file {}: cannot read: {}", path, errno_text(err)));
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<std::size_t>(n));
    if (bytes.size() > limits::key_file_bytes_max) {
      ::close(fd);
      return Status::error(fmt::format(
          "chat key file {}: expected 32 raw bytes or 64 hex digits, the file is larger than {} "
          "bytes",
          path, limits::key_file_bytes_max));
    }
  }
  ::close(fd);
  return parse_chat_key(bytes, path);
}

Result<std::string> create_chat_key_file(const std::string& path, crypto::Random& random) {
  std::string key(crypto::kAeadKeyBytes, '\0');
  random.fill(reinterpret_cast<std::uint8_t*>(key.data()), key.size());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kKeyFileMode);
  if (fd < 0) {
    return Status::error(
        fmt::format("chat key file {}: cannot create: {}", path, errno_text(errno)));
  }
  // The umask can only remove bits, but say exactly what we mean anyway.
  ::fchmod(fd, kKeyFileMode);
  Status written = write_all(fd, crypto::hex_encode(key) + "\n", path);
  if (written && ::fsync(fd) != 0) {
    written = Status::error(fmt::format("chat key file {}: fsync: {}", path, errno_text(errno)));
  }
  ::close(fd);
  if (!written) {
    // A half-written key must not be mistaken for a key at the next start.
    ::unlink(path.c_str());
    return written;
  }
  sync_parent_dir(path);
  return key;
}

}  // namespace rc::persist
