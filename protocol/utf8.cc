#include "protocol/utf8.h"

#include <array>
#include <bit>
#include <cstring>

namespace rc::utf8 {
namespace {

// The validator is a DFA over byte classes. Bytes are first mapped to one of
// a dozen classes (which positions of which sequence they may take), so the
// transition table stays small enough to live in one or two cache lines.
// Both tables are computed at compile time from the RFC 3629 byte ranges
// below, which keeps the rules readable instead of hiding them in magic
// numbers.
enum ByteClass : std::uint8_t {
  kAscii,    // 00..7F
  kCont80,   // 80..8F  continuation, also the only 2nd byte allowed after F4
  kCont90,   // 90..9F  continuation, allowed after ED (not after E0 / F4)
  kContA0,   // A0..BF  continuation, allowed after E0 / F0 (not after ED / F4)
  kInvalid,  // C0, C1 (overlong 2-byte leads), F5..FF (beyond U+10FFFF)
  kLead2,    // C2..DF
  kLeadE0,   // E0: 2nd byte A0..BF, else overlong
  kLead3,    // E1..EC, EE, EF
  kLeadED,   // ED: 2nd byte 80..9F, else a surrogate
  kLeadF0,   // F0: 2nd byte 90..BF, else overlong
  kLead4,    // F1..F3
  kLeadF4,   // F4: 2nd byte 80..8F, else beyond U+10FFFF
  kClassCount,
};

// DFA states. kAccept must be 0: Validator's state starts at 0.
enum State : std::uint8_t {
  kAccept,
  kReject,
  kNeed1,  // one continuation byte (80..BF) left
  kNeed2,
  kNeed3,
  kAfterE0,
  kAfterED,
  kAfterF0,
  kAfterF4,
  kStateCount,
};

constexpr std::uint8_t classify(unsigned b) {
  if (b < 0x80) return kAscii;
  if (b < 0x90) return kCont80;
  if (b < 0xA0) return kCont90;
  if (b < 0xC0) return kContA0;
  if (b < 0xC2) return kInvalid;
  if (b < 0xE0) return kLead2;
  if (b == 0xE0) return kLeadE0;
  if (b == 0xED) return kLeadED;
  if (b < 0xF0) return kLead3;
  if (b == 0xF0) return kLeadF0;
  if (b < 0xF4) return kLead4;
  if (b == 0xF4) return kLeadF4;
  return kInvalid;
}

constexpr std::array<std::uint8_t, 256> make_classes() {
  std::array<std::uint8_t, 256> classes{};
  for (unsigned b = 0; b < 256; ++b) classes[b] = classify(b);
  return classes;
}

// One line per rule: these two read as the table they build.
// clang-format off
// The state after the first byte of a sequence.
constexpr std::uint8_t lead_state(std::uint8_t cls) {
  switch (cls) {
    case kAscii: return kAccept;
    case kLead2: return kNeed1;
    case kLeadE0: return kAfterE0;
    case kLead3: return kNeed2;
    case kLeadED: return kAfterED;
    case kLeadF0: return kAfterF0;
    case kLead4: return kNeed3;
    case kLeadF4: return kAfterF4;
    default: return kReject;
  }
}

constexpr std::uint8_t transition(std::uint8_t state, std::uint8_t cls) {
  const bool any_cont = cls == kCont80 || cls == kCont90 || cls == kContA0;
  switch (state) {
    case kAccept: return lead_state(cls);
    case kNeed1: return any_cont ? kAccept : kReject;
    case kNeed2: return any_cont ? kNeed1 : kReject;
    case kNeed3: return any_cont ? kNeed2 : kReject;
    case kAfterE0: return cls == kContA0 ? kNeed1 : kReject;
    case kAfterED: return cls == kCont80 || cls == kCont90 ? kNeed1 : kReject;
    case kAfterF0: return cls == kCont90 || cls == kContA0 ? kNeed2 : kReject;
    case kAfterF4: return cls == kCont80 ? kNeed2 : kReject;
    default: return kReject;
  }
}
// clang-format on

constexpr std::size_t kTableSize = std::size_t{kStateCount} * std::size_t{kClassCount};

constexpr std::array<std::uint8_t, kTableSize> make_transitions() {
  std::array<std::uint8_t, kTableSize> table{};
  for (std::uint8_t s = 0; s < kStateCount; ++s) {
    for (std::uint8_t c = 0; c < kClassCount; ++c) {
      table[s * std::size_t{kClassCount} + c] = transition(s, c);
    }
  }
  return table;
}

constexpr auto kClasses = make_classes();
constexpr auto kTransitions = make_transitions();

constexpr std::uint64_t kHighBits = 0x8080808080808080ull;

inline std::uint64_t load8(const unsigned char* p) {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// Runs the DFA from `state` over s and returns the final state, stopping
// early on kReject. While between code points it skips ASCII a word at a time:
// chat and JSON are mostly ASCII, so most bytes never reach the table.
std::uint32_t run(std::uint32_t state, std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    if (state == kAccept) {
      while (i + 8 <= n && (load8(p + i) & kHighBits) == 0) i += 8;
      while (i < n && p[i] < 0x80) ++i;
      if (i == n) break;
    }
    state = kTransitions[state * std::size_t{kClassCount} + kClasses[p[i]]];
    if (state == kReject) break;
    ++i;
  }
  return state;
}

inline bool is_trimmed_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

}  // namespace

bool valid(std::string_view s) {
  return run(kAccept, s) == kAccept;
}

std::size_t count_code_points(std::string_view s) {
  // A code point starts at every byte that is not a continuation byte
  // (10xxxxxx). Per word: a byte is a continuation byte when its bit 7 is set
  // and its bit 6 is clear; shifting left by one lines bit 6 up with bit 7.
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t count = 0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t w = load8(p + i);
    const std::uint64_t continuation = w & ~(w << 1) & kHighBits;
    count += 8 - static_cast<std::size_t>(std::popcount(continuation));
  }
  for (; i < n; ++i) count += (p[i] & 0xC0) != 0x80;
  return count;
}

bool has_control(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char b = p[i];
    if (b < 0x20 || b == 0x7F) return true;
    // U+0080..U+009F is C2 followed by 80..9F.
    if (b == 0xC2 && i + 1 < n && (p[i + 1] & 0xE0) == 0x80) return true;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  std::size_t begin = 0;
  std::size_t end = s.size();
  while (begin < end && is_trimmed_space(s[begin])) ++begin;
  while (end > begin && is_trimmed_space(s[end - 1])) --end;
  return s.substr(begin, end - begin);
}

bool Validator::feed(std::string_view piece) {
  if (state_ == kReject) return false;
  state_ = run(state_, piece);
  return state_ != kReject;
}

bool Validator::finish() const {
  return state_ == kAccept;
}

}  // namespace rc::utf8
