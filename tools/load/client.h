#pragma once
// One client session of rollcall-load as a worker holds it: its socket and
// TLS state, its place in the connection sequence, its buffers, its model
// of the room (presence) and its chat bookkeeping (chat). Plus the small
// value types and limits the worker uses around it.
//
// Threading: a Client belongs to one Worker and is touched by its thread only.

#include <simdjson.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tools/load/chat.h"
#include "tools/load/server_messages.h"
#include "tools/load/tls_client.h"

namespace rc::load {

inline constexpr std::size_t kPadBytes = simdjson::SIMDJSON_PADDING;
inline constexpr std::size_t kReadBytes = 256 * 1024;              // one recv() at most
inline constexpr std::size_t kMessageBytesMax = 16 * 1024 * 1024;  // larger server frames fail
// A presence update or chat message is skipped (and counted) while a session
// has more unsent bytes than this: the generator never queues without bound.
inline constexpr std::size_t kUnsentBytesMax = 256 * 1024;
inline constexpr std::uint32_t kConnectAttemptsMax = 5;
inline constexpr std::int64_t kRetryDelayNs = 250'000'000;  // times the attempt number
// Connects, TLS handshakes and upgrades under way per worker.
inline constexpr std::uint32_t kOpeningMax = 256;
inline constexpr int kEventsMax = 512;
inline constexpr std::int64_t kPollNsMax = 5'000'000;
inline constexpr std::int64_t kCloseWaitNs = 2'000'000'000;
inline constexpr std::size_t kCacheSlots = 64;  // parsed deltas and chat frames kept per room
inline constexpr std::int64_t kSettlePassNs =
    20'000'000;  // models compared with the truth this often
// Closed-loop chat: after a refusal (RATE_LIMITED, …) the client waits this
// long before sending again, instead of spinning on the refusal.
inline constexpr std::int64_t kRefusedBackoffNs = 10'000'000;
// Chat drain: how often a worker counts its messages still unanswered.
inline constexpr std::int64_t kDrainPassNs = 10'000'000;

static_assert(kReadBytes >= 2 * kTlsRecordPlainBytes, "a TLS read loop takes whole records");

// A growable byte buffer that always keeps kPadBytes readable after its
// content (simdjson reads past the end of what it parses).
class PaddedBytes {
 public:
  std::uint8_t* data() { return buf_.data(); }
  std::size_t size() const { return len_; }
  std::uint8_t* readable_end() { return buf_.data() + len_ + kPadBytes; }
  void append(const std::uint8_t* p, std::size_t n) {
    if (len_ + n + kPadBytes > buf_.size())
      buf_.resize(std::max(2 * buf_.size(), len_ + n + kPadBytes));
    std::memcpy(buf_.data() + len_, p, n);
    len_ += n;
  }
  void consume(std::size_t n) {
    std::memmove(buf_.data(), buf_.data() + n, len_ - n);
    len_ -= n;
  }
  void release() {
    std::vector<std::uint8_t>().swap(buf_);
    len_ = 0;
  }

 private:
  std::vector<std::uint8_t> buf_;
  std::size_t len_ = 0;
};

// xorshift64: masks, keys, jitter and positions; not for anything secret.
struct FastRandom {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

enum class State : std::uint8_t {
  kWaiting,
  kConnecting,
  kTlsHandshake,
  kUpgrading,
  kOpen,
  kReady,
  kClosing,
  kDone
};

// Connecting, TLS handshake or upgrade: counted against kOpeningMax.
inline bool opening(State s) {
  return s == State::kConnecting || s == State::kTlsHandshake || s == State::kUpgrading;
}

struct Client {
  int fd = -1;
  std::uint32_t room = 0;
  std::uint32_t member = 0;
  std::uint32_t source = 0;
  State state = State::kWaiting;
  std::uint8_t attempts = 0;
  bool probe = false;           // sends the room's sync at the end
  bool sync_requested = false;  // probe: its sync is on the way
  bool close_sent = false;
  bool writing = false;  // EPOLLOUT is armed
  bool assembling = false;
  bool has_tick = false;
  bool settled = false;  // its model matched its room's truth (or was compared at the deadline)
  bool open_at_close = false;  // still open when the close phase began
  std::uint64_t last_tick = 0;
  std::int64_t second = -1;  // window second of sec_deltas
  std::uint64_t sec_deltas = 0;
  std::int64_t tls_start_ns = 0;
  std::unique_ptr<TlsConn> tls;  // --tls: from the TCP connect to the close
  std::string accept;            // the expected Sec-WebSocket-Accept while upgrading
  PaddedBytes in;                // received bytes not yet parsed (a partial frame)
  PaddedBytes frag;              // a fragmented message being assembled
  std::string out;               // bytes not yet written (plaintext with --tls)
  std::size_t out_off = 0;
  RoomModel model;
  ChatTracker chat;
};

}  // namespace rc::load
