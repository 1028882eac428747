#pragma once
// Single-use tickets (PROTOCOL 2): a browser trades its token for a ticket
// with POST /api/tickets and puts the ticket, never the token, in the URL.
//
// Each shard keeps the tickets it issued; a ticket's first byte names that
// shard, so whichever shard a redeeming connection lands on hands it to the
// issuer, which consumes the ticket exactly once. No lock, no shared map.
// Owned by one shard thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/crypto.h"
#include "protocol/jwt.h"

namespace rc::rooms {

inline constexpr std::int64_t kTicketTtlMs = 30000;
inline constexpr std::size_t kTicketsPerShardMax = 100000;
inline constexpr std::size_t kTicketRandomBytes = 18;

class TicketStore {
 public:
  explicit TicketStore(std::uint32_t shard) : shard_(shard) {}

  // How long a ticket for these claims lives: 30 s or until the token's exp,
  // whichever comes first (0 when exp has passed, even within the skew the
  // token itself is allowed).
  static std::int64_t ttl_ms(const jwt::Claims& claims, std::int64_t wall_ms);
  // A new ticket for these claims, valid for ttl_ms(). Empty when the store
  // is full.
  std::string issue(const jwt::Claims& claims, std::int64_t now_ms, std::int64_t wall_ms,
                    crypto::Random& random);
  // The claims of a live ticket, which is consumed; nullopt if unknown,
  // already used or expired.
  std::optional<jwt::Claims> redeem(std::string_view ticket, std::int64_t now_ms);
  // Drops expired tickets (called once a second).
  void sweep(std::int64_t now_ms);
  std::size_t size() const { return tickets_.size(); }

  // The shard that issued a ticket, or nullopt when it is not one of ours.
  static std::optional<std::uint32_t> issuer(std::string_view ticket, std::uint32_t shards);

 private:
  struct Entry {
    jwt::Claims claims;
    std::int64_t expires_ms;  // monotonic
  };
  std::uint32_t shard_;
  std::unordered_map<std::string, Entry> tickets_;
};

}  // namespace rc::rooms
