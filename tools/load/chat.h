#pragma once
// The chat side of rollcall-load (PROTOCOL.md 3.1 `chat`, 3.2, 5): how a
// generated message names itself, and what one client checks about the chat
// stream it receives.
//
// Every message the generator sends carries client_id "c<send µs>-<n>": the
// send time (CLOCK_REALTIME, µs) and the sender's message number n (1, 2, …).
// The server echoes client_id in the committed `chat` broadcast, and the
// sender's own session receives that broadcast: that receipt is the ack, and
// ack latency = receipt time - send time. A refused message comes back as an
// `error` whose `ref` is the client_id instead. Either way each message gets
// exactly one answer, which ChatTracker checks.
//
// Pure: no I/O, no clock, no global state. Not thread-safe: one tracker per
// client, used by the thread that owns the client.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string_view>
#include <vector>

namespace rc::load {

// A client_id is at most 64 bytes (PROTOCOL 3.2); ours at most 1 + 19 + 1 + 20.
inline constexpr std::size_t kClientIdBytesMax = 64;
// Messages one client may have sent and not yet seen answered. A sender at
// the bound skips its next sends (counted), so the tracker never grows past it.
inline constexpr std::size_t kChatInflightMax = 4096;
// Chat text the generator sends: 1..2000 characters (the server's default
// --max-chat-chars); ASCII only, so bytes = characters.
inline constexpr std::size_t kChatTextBytesMax = 2000;

struct ClientId {
  std::int64_t sent_us = 0;  // CLOCK_REALTIME when it was sent
  std::uint64_t n = 0;       // the sender's message number, from 1
};

// Writes "c<sent_us>-<n>" into out (at least kClientIdBytesMax bytes).
// Returns its length. sent_us must be >= 0.
inline std::size_t format_client_id(char* out, std::int64_t sent_us, std::uint64_t n) {
  const int len =
      std::snprintf(out, kClientIdBytesMax, "c%lld-%llu", static_cast<long long>(sent_us),
                    static_cast<unsigned long long>(n));
  return len > 0 ? static_cast<std::size_t>(len) : 0;
}

namespace detail {
// Parses 1..max_digits decimal digits from s; false on anything else or overflow.
inline bool parse_digits(std::string_view s, std::size_t max_digits, std::uint64_t& out) {
  if (s.empty() || s.size() > max_digits) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}
}  // namespace detail

// "c<1-19 digits>-<1-20 digits>" -> true and out; anything else (someone
// else's client_id, a malformed one, n = 0) -> false.
inline bool parse_client_id(std::string_view text, ClientId& out) {
  if (text.size() < 4 || text[0] != 'c') return false;
  const std::size_t dash = text.find('-', 1);
  if (dash == std::string_view::npos) return false;
  std::uint64_t us = 0, n = 0;
  if (!detail::parse_digits(text.substr(1, dash - 1), 19, us) ||
      us > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
      !detail::parse_digits(text.substr(dash + 1), 20, n) || n == 0) {
    return false;
  }
  out.sent_us = static_cast<std::int64_t>(us);
  out.n = n;
  return true;
}

// What a received seq says about the room's stream as this client sees it.
enum class SeqCheck : std::uint8_t {
  kNext,           // exactly one more than the last seq seen
  kGap,            // greater, but some seqs were never received
  kNotIncreasing,  // equal to or below the last seq seen: a duplicate or out of order
};

// What an ack (or an error naming one of ours) says about that message.
enum class AnswerCheck : std::uint8_t {
  kFirst,      // the first answer for a message in flight
  kDuplicate,  // a message answered before
  kUnknown,    // a number this client never sent
};

// One client's chat bookkeeping: its own messages in flight (numbers
// [base, next) with an answered flag each) and the stream of seqs it saw.
class ChatTracker {
 public:
  // The welcome: the room's last seq before this session (chat.last_seq).
  void start(std::uint64_t last_seq) {
    started_ = true;
    first_seq_ = last_seq_ = last_seq;
  }
  bool started() const { return started_; }

  std::size_t in_flight() const { return next_n_ - base_n_; }
  bool can_send() const { return in_flight() < kChatInflightMax; }

  // Registers the next message as sent and returns its number (from 1).
  // Only when can_send().
  std::uint64_t send() {
    const std::size_t size = ring_.size();
    if (in_flight() == size) grow();
    ring_[(head_ + in_flight()) & (ring_.size() - 1)] = 0;
    return next_n_++;
  }

  // An ack or an error for message n.
  AnswerCheck answer(std::uint64_t n) {
    if (n >= next_n_ || n == 0) return AnswerCheck::kUnknown;
    if (n < base_n_) return AnswerCheck::kDuplicate;
    std::uint8_t& flag = ring_[(head_ + (n - base_n_)) & (ring_.size() - 1)];
    if (flag != 0) return AnswerCheck::kDuplicate;
    flag = 1;
    while (base_n_ < next_n_ && ring_[head_] != 0) {
      head_ = (head_ + 1) & (ring_.size() - 1);
      ++base_n_;
    }
    return AnswerCheck::kFirst;
  }

  // A message of the room's stream, as received. Folds (seq, author, n)
  // into the stream hash, so that clients of one room that saw the same seq
  // range can be compared: equal hashes, equal streams.
  SeqCheck see(std::uint64_t seq, std::int32_t author, std::uint64_t n) {
    hash_ = mix(hash_ ^ mix(seq * 0x9E3779B97F4A7C15ull + static_cast<std::uint32_t>(author)) ^
                mix(n + 0x632BE59BD9B4E019ull));
    ++seen_;
    if (seq <= last_seq_) return SeqCheck::kNotIncreasing;
    const bool next = seq == last_seq_ + 1;
    last_seq_ = seq;
    return next ? SeqCheck::kNext : SeqCheck::kGap;
  }

  std::uint64_t first_seq() const { return first_seq_; }  // the welcome's last_seq
  std::uint64_t last_seq() const { return last_seq_; }
  std::uint64_t seen() const { return seen_; }
  std::uint64_t stream_hash() const { return hash_; }

 private:
  static std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }

  // Doubles the ring (from 16), keeping the flags of [base, next) in order.
  void grow() {
    const std::size_t old = ring_.size();
    std::vector<std::uint8_t> bigger(old == 0 ? 16 : 2 * old, 0);
    for (std::size_t i = 0; i < in_flight(); ++i) bigger[i] = ring_[(head_ + i) & (old - 1)];
    ring_.swap(bigger);
    head_ = 0;
  }

  bool started_ = false;
  std::uint64_t base_n_ = 1;  // the oldest message not yet answered (or next_n_)
  std::uint64_t next_n_ = 1;
  std::size_t head_ = 0;  // ring slot of base_n_
  std::vector<std::uint8_t> ring_;
  std::uint64_t first_seq_ = 0;
  std::uint64_t last_seq_ = 0;
  std::uint64_t seen_ = 0;
  std::uint64_t hash_ = 0;
};

// What a client saw of its room's chat, for the end-of-run comparison of the
// clients of one room.
struct ChatStream {
  std::uint32_t room = 0;
  bool open = false;  // had its welcome and was still open when the run ended
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t seen = 0;
  std::uint64_t hash = 0;
};

struct StreamCheck {
  std::uint64_t rooms = 0;             // rooms with at least one open client
  std::uint64_t rooms_consistent = 0;  // every open client saw the same stream to the same end
  std::uint64_t clients = 0;           // open clients compared
  std::uint64_t clients_behind = 0;    // last seq below their room's highest
  std::uint64_t clients_diverged = 0;  // same range as the room's reference, different stream
};

// Groups the streams by room. In a room, the reference is the first open
// client with the highest last seq; every other open client must have that
// last seq (else it is behind) and, from the same first seq, the same hash
// (else it diverged: another message, author or order at some seq).
inline StreamCheck compare_streams(const std::vector<ChatStream>& streams, std::uint32_t rooms) {
  StreamCheck out;
  std::vector<const ChatStream*> ref(rooms, nullptr);
  for (const ChatStream& s : streams) {
    if (!s.open || s.room >= rooms) continue;
    if (ref[s.room] == nullptr || s.last_seq > ref[s.room]->last_seq) ref[s.room] = &s;
  }
  std::vector<std::uint8_t> bad(rooms, 0);
  for (const ChatStream& s : streams) {
    if (!s.open || s.room >= rooms) continue;
    ++out.clients;
    const ChatStream& r = *ref[s.room];
    if (s.last_seq < r.last_seq) {
      ++out.clients_behind;
      bad[s.room] = 1;
    } else if (s.first_seq == r.first_seq && s.hash != r.hash) {
      ++out.clients_diverged;
      bad[s.room] = 1;
    }
  }
  for (std::uint32_t r = 0; r < rooms; ++r) {
    if (ref[r] == nullptr) continue;
    ++out.rooms;
    if (bad[r] == 0) ++out.rooms_consistent;
  }
  return out;
}

static_assert((kChatInflightMax & (kChatInflightMax - 1)) == 0, "the ring doubles up to the bound");

}  // namespace rc::load
