#include "rooms/tickets.h"

#include <algorithm>

namespace rc::rooms {

std::string TicketStore::issue(const jwt::Claims& claims, std::int64_t now_ms, std::int64_t wall_ms,
                               crypto::Random& random) {
  if (tickets_.size() >= kTicketsPerShardMax) sweep(now_ms);
  if (tickets_.size() >= kTicketsPerShardMax) return {};
  std::string raw(1 + kTicketRandomBytes, '\0');
  raw[0] = static_cast<char>(shard_);
  random.fill(reinterpret_cast<std::uint8_t*>(raw.data() + 1), kTicketRandomBytes);
  std::string ticket = crypto::base64url_encode(raw);
  tickets_.emplace(ticket, Entry{claims, now_ms + ttl_ms(claims, wall_ms)});
  return ticket;
}

std::int64_t TicketStore::ttl_ms(const jwt::Claims& claims, std::int64_t wall_ms) {
  // The ticket never outlives the token it was traded for.
  const std::int64_t token_left_ms = claims.exp_s * 1000 - wall_ms;
  return std::clamp<std::int64_t>(token_left_ms, 0, kTicketTtlMs);
}

std::optional<jwt::Claims> TicketStore::redeem(std::string_view ticket, std::int64_t now_ms) {
  auto it = tickets_.find(std::string(ticket));
  if (it == tickets_.end()) return std::nullopt;
  Entry e = std::move(it->second);
  tickets_.erase(it);
  if (now_ms >= e.expires_ms) return std::nullopt;
  return std::move(e.claims);
}

void TicketStore::sweep(std::int64_t now_ms) {
  std::erase_if(tickets_, [now_ms](const auto& kv) { return now_ms >= kv.second.expires_ms; });
}

std::optional<std::uint32_t> TicketStore::issuer(std::string_view ticket, std::uint32_t shards) {
  if (ticket.size() > 64) return std::nullopt;
  std::optional<std::string> raw = crypto::base64url_decode(ticket);
  if (!raw || raw->size() != 1 + kTicketRandomBytes) return std::nullopt;
  std::uint32_t shard = static_cast<std::uint8_t>((*raw)[0]);
  if (shard >= shards) return std::nullopt;
  return shard;
}

}  // namespace rc::rooms
