// Unit tests of rooms/tickets.h: single use, the 30 s lifetime (or the
// token's exp, whichever is first), the sweep, the bound, and the issuing
// shard named by a ticket's first byte. Times are injected: `now` is the
// monotonic clock, `wall` the wall clock.

#include "rooms/tickets.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace rc::rooms {
namespace {

constexpr std::int64_t kNow = 1'000'000;
constexpr std::int64_t kWall = 1'763'798'400'000;

jwt::Claims claims_for(const std::string& sub, std::int64_t exp_s = kWall / 1000 + 3600) {
  jwt::Claims c;
  c.sub = sub;
  c.name = "name of " + sub;
  c.role = jwt::Role::kTeacher;
  c.rooms = {"physics-101"};
  c.exp_s = exp_s;
  return c;
}

class TicketsTest : public ::testing::Test {
 protected:
  TicketStore store{3};
  crypto::Random random;

  std::string issue(const jwt::Claims& c, std::int64_t now = kNow, std::int64_t wall = kWall) {
    return store.issue(c, now, wall, random);
  }
};

TEST_F(TicketsTest, RedeemsOnceWithTheWholeIdentity) {
  const std::string t = issue(claims_for("ada"));
  ASSERT_FALSE(t.empty());
  auto got = store.redeem(t, kNow + 1);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->sub, "ada");
  EXPECT_EQ(got->name, "name of ada");
  EXPECT_EQ(got->role, jwt::Role::kTeacher);
  EXPECT_EQ(got->rooms, std::vector<std::string>{"physics-101"});
  EXPECT_FALSE(store.redeem(t, kNow + 2).has_value()) << "a ticket is single use";
  EXPECT_EQ(store.size(), 0u);
}

TEST_F(TicketsTest, LivesThirtySeconds) {
  const std::string t = issue(claims_for("bo"));
  const std::string u = issue(claims_for("cy"));
  EXPECT_TRUE(store.redeem(t, kNow + kTicketTtlMs - 1).has_value());
  EXPECT_FALSE(store.redeem(u, kNow + kTicketTtlMs).has_value());
  EXPECT_EQ(store.size(), 0u) << "an expired ticket is consumed by the attempt";
}

TEST_F(TicketsTest, NeverOutlivesItsToken) {
  // The token has 5 s left: so has the ticket.
  const std::string t = issue(claims_for("di", kWall / 1000 + 5));
  const std::string u = issue(claims_for("ed", kWall / 1000 + 5));
  EXPECT_TRUE(store.redeem(t, kNow + 4999).has_value());
  EXPECT_FALSE(store.redeem(u, kNow + 5000).has_value());
  // A token already expired gives a ticket that is dead at once.
  const std::string v = issue(claims_for("fa", kWall / 1000 - 1));
  EXPECT_FALSE(store.redeem(v, kNow).has_value());
}

TEST(TicketsTtl, ThirtySecondsOrTheTokensTimeLeft) {
  EXPECT_EQ(TicketStore::ttl_ms(claims_for("a"), kWall), kTicketTtlMs);
  EXPECT_EQ(TicketStore::ttl_ms(claims_for("b", kWall / 1000 + 30), kWall), kTicketTtlMs);
  EXPECT_EQ(TicketStore::ttl_ms(claims_for("c", kWall / 1000 + 5), kWall + 250), 4750);
  EXPECT_EQ(TicketStore::ttl_ms(claims_for("d", kWall / 1000), kWall), 0);
  EXPECT_EQ(TicketStore::ttl_ms(claims_for("e", kWall / 1000 - 20), kWall), 0);
}

TEST_F(TicketsTest, SweepDropsOnlyExpiredTickets) {
  issue(claims_for("old"));
  const std::string young = issue(claims_for("young"), kNow + 10000);
  store.sweep(kNow + kTicketTtlMs);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_TRUE(store.redeem(young, kNow + kTicketTtlMs).has_value());
}

TEST_F(TicketsTest, UnknownAndForgedTicketsAreRefused) {
  issue(claims_for("gi"));
  EXPECT_FALSE(store.redeem("", kNow).has_value());
  EXPECT_FALSE(store.redeem("not-a-ticket", kNow).has_value());
  EXPECT_EQ(store.size(), 1u) << "a failed guess consumes nothing";
}

TEST_F(TicketsTest, TicketsAreRandomAndNameTheirShard) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string user = "u";
    user += std::to_string(i);  // (g++ 12 misreads "u" + to_string as an overlapping copy)
    const std::string t = issue(claims_for(user));
    EXPECT_TRUE(seen.insert(t).second) << "ticket repeated: " << t;
    EXPECT_EQ(TicketStore::issuer(t, 4), std::optional<std::uint32_t>(3));
    EXPECT_EQ(TicketStore::issuer(t, 3), std::nullopt) << "shard 3 of 3 does not exist";
  }
  EXPECT_EQ(TicketStore::issuer("", 4), std::nullopt);
  EXPECT_EQ(TicketStore::issuer("!!!!", 4), std::nullopt);
  EXPECT_EQ(TicketStore::issuer(std::string(65, 'A'), 4), std::nullopt);
}

TEST(TicketsBound, FullStoreSweepsThenRefuses) {
  TicketStore store(0);
  crypto::Random random;
  const jwt::Claims c = claims_for("many");
  for (std::size_t i = 0; i < kTicketsPerShardMax; ++i) {
    ASSERT_FALSE(store.issue(c, kNow, kWall, random).empty()) << i;
  }
  EXPECT_TRUE(store.issue(c, kNow + 1, kWall, random).empty()) << "full of live tickets";
  EXPECT_EQ(store.size(), kTicketsPerShardMax);
  // Once they have expired, issuing sweeps them first.
  EXPECT_FALSE(store.issue(c, kNow + kTicketTtlMs, kWall, random).empty());
  EXPECT_EQ(store.size(), 1u);
}

}  // namespace
}  // namespace rc::rooms
