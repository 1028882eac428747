#include "core/mpsc_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace rc {
namespace {

TEST(MpscQueue, StartsEmpty) {
  MpscQueue<int, 8> q;
  int out = -1;
  EXPECT_TRUE(q.empty_approx());
  EXPECT_FALSE(q.try_pop(out));
  EXPECT_EQ(out, -1);
  EXPECT_EQ(q.capacity(), 8u);
}

TEST(MpscQueue, PopsInPushOrder) {
  MpscQueue<int, 8> q;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(q.try_push(int{i}));
  EXPECT_FALSE(q.empty_approx());
  for (int i = 0; i < 5; ++i) {
    int out = -1;
    ASSERT_TRUE(q.try_pop(out));
    EXPECT_EQ(out, i);
  }
  int out = -1;
  EXPECT_FALSE(q.try_pop(out));
  EXPECT_TRUE(q.empty_approx());
}

TEST(MpscQueue, FullQueueRefusesAndLeavesValueWithCaller) {
  MpscQueue<std::string, 4> q;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(q.try_push(std::string(40, static_cast<char>('a' + i))));
  std::string extra(40, 'z');
  EXPECT_FALSE(q.try_push(std::move(extra)));
  EXPECT_EQ(extra, std::string(40, 'z'));  // a refused push does not consume its argument

  std::string out;
  ASSERT_TRUE(q.try_pop(out));
  EXPECT_EQ(out, std::string(40, 'a'));
  EXPECT_TRUE(q.try_push(std::move(extra)));  // one slot freed, one push fits
  EXPECT_FALSE(q.try_push(std::string("no room")));
}

TEST(MpscQueue, WrapsAroundManyLaps) {
  MpscQueue<std::uint64_t, 4> q;
  std::uint64_t next_in = 0, next_out = 0;
  for (int round = 0; round < 1000; ++round) {
    const int n = 1 + round % 4;
    for (int i = 0; i < n; ++i) ASSERT_TRUE(q.try_push(std::uint64_t{next_in++}));
    std::uint64_t out = 0;
    while (q.try_pop(out)) EXPECT_EQ(out, next_out++);
  }
  EXPECT_EQ(next_in, next_out);
}

TEST(MpscQueue, HoldsMoveOnlyValues) {
  MpscQueue<std::unique_ptr<int>, 2> q;
  ASSERT_TRUE(q.try_push(std::make_unique<int>(7)));
  std::unique_ptr<int> out;
  ASSERT_TRUE(q.try_pop(out));
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(*out, 7);
}

TEST(MpscQueue, DestroysItemsLeftInTheQueue) {
  auto tracker = std::make_shared<int>(0);
  {
    MpscQueue<std::shared_ptr<int>, 8> q;
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(q.try_push(std::shared_ptr<int>(tracker)));
    std::shared_ptr<int> out;
    ASSERT_TRUE(q.try_pop(out));
    out.reset();
    EXPECT_EQ(tracker.use_count(), 5);  // ours + 4 still queued
  }
  EXPECT_EQ(tracker.use_count(), 1);
}

// Four producers push 100k tagged items each through a small queue (so it is
// full most of the time); one consumer checks that every item arrives exactly
// once and that each producer's items arrive in the order it pushed them.
TEST(MpscQueue, ManyProducersOneConsumerUnderContention) {
  constexpr int kProducers = 4;
  constexpr std::uint64_t kPerProducer = 100000;
  auto q = std::make_unique<MpscQueue<std::uint64_t, 1024>>();
  std::atomic<bool> go{false};

  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&q, &go, p] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (std::uint64_t i = 0; i < kPerProducer; ++i) {
        const std::uint64_t item = (static_cast<std::uint64_t>(p) << 32) | i;
        while (!q->try_push(std::uint64_t{item})) std::this_thread::yield();
      }
    });
  }

  std::vector<std::uint64_t> next(kProducers, 0);
  std::uint64_t received = 0, out_of_order = 0, bad_tag = 0;
  go.store(true, std::memory_order_release);
  while (received < kProducers * kPerProducer) {
    std::uint64_t item = 0;
    if (!q->try_pop(item)) {
      std::this_thread::yield();
      continue;
    }
    const std::uint64_t p = item >> 32, i = item & 0xffffffffu;
    ++received;
    if (p >= kProducers) {
      ++bad_tag;
      continue;
    }
    if (i != next[p]) ++out_of_order;
    next[p] = i + 1;
  }
  for (auto& t : producers) t.join();

  EXPECT_EQ(bad_tag, 0u);
  EXPECT_EQ(out_of_order, 0u);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(next[p], kPerProducer) << "producer " << p;
  std::uint64_t extra = 0;
  EXPECT_FALSE(q->try_pop(extra));
  EXPECT_TRUE(q->empty_approx());
}

}  // namespace
}  // namespace rc
