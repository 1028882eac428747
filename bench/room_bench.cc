// Micro-benchmarks of one room's per-tick work (rooms/room.h) at 1,000
// members: coalescing a busy tick (everyone moves), a calm tick (one member
// moves), and the whole member list a welcome carries. The output buffer is
// reused across iterations, as a shard reuses its scratch buffer.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rooms/room.h"

namespace {

constexpr int kMembers = 1000;
constexpr std::int64_t kNowMs = 1'000'000;
constexpr std::int64_t kWallMs = 1'763'798'400'000;

struct Filled {
  std::unique_ptr<rc::rooms::Room> room;
  std::vector<rc::rooms::Member*> members;
};

// A room of kMembers placed members whose joins are already published.
Filled filled_room() {
  Filled f;
  f.room = std::make_unique<rc::rooms::Room>("bench", rc::rooms::RoomRules{});
  rc::msg::Presence p;
  p.has = rc::msg::Presence::kHasX | rc::msg::Presence::kHasY | rc::msg::Presence::kHasStatusText;
  p.status_text = "working on problem 3";
  for (int i = 0; i < kMembers; ++i) {
    rc::rooms::Identity who;
    who.user_id = "user-" + std::to_string(i);
    who.name = "Student " + std::to_string(i);
    rc::rooms::Member& m = f.room->attach(who, kNowMs);
    p.x = (i % 100) / 100.0;
    p.y = (i / 100) / 10.0;
    (void)f.room->apply(m, p, kNowMs, kWallMs);
    f.members.push_back(&m);
  }
  std::string out;
  f.room->build_delta(out);
  return f;
}

// Moves m half the room across: always a change from its current x.
void move(rc::rooms::Room& room, rc::rooms::Member& m) {
  rc::msg::Presence p;
  p.has = rc::msg::Presence::kHasX;
  p.x = m.now.x < 0.5 ? m.now.x + 0.5 : m.now.x - 0.5;
  (void)room.apply(m, p, kNowMs, kWallMs);
}

void BM_Delta1000Members(benchmark::State& state) {
  Filled f = filled_room();
  std::string out;
  for (auto _ : state) {
    for (rc::rooms::Member* m : f.members) move(*f.room, *m);
    out.clear();
    const bool sent = f.room->build_delta(out);
    benchmark::DoNotOptimize(sent);
    benchmark::DoNotOptimize(out.data());
    if (!sent) state.SkipWithError("no delta");
  }
  state.SetItemsProcessed(state.iterations() * kMembers);  // member updates
  state.counters["delta_bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_Delta1000Members);

void BM_Delta1Change1000(benchmark::State& state) {
  Filled f = filled_room();
  std::string out;
  std::size_t next = 0;
  for (auto _ : state) {
    move(*f.room, *f.members[next]);
    next = (next + 1) % f.members.size();
    out.clear();
    const bool sent = f.room->build_delta(out);
    benchmark::DoNotOptimize(sent);
    benchmark::DoNotOptimize(out.data());
    if (!sent) state.SkipWithError("no delta");
  }
  state.counters["delta_bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_Delta1Change1000);

void BM_WelcomeMembers1000(benchmark::State& state) {
  Filled f = filled_room();
  std::string out;
  for (auto _ : state) {
    out.clear();
    f.room->write_members(out, nullptr);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
  state.counters["members_bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_WelcomeMembers1000);

}  // namespace
