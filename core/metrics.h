#pragma once
// Counters written by one thread and read by any (the /metrics answer).
//
// A Counter has a single writer (its shard); readers on other threads see a
// recent value. Relaxed atomics make that well-defined without a lock or a
// read-modify-write on the hot path.

#include <atomic>
#include <cstdint>

namespace rc {

class Counter {
 public:
  void add(std::uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(std::uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  void set(std::uint64_t n) { v_.store(n, std::memory_order_relaxed); }
  std::uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

}  // namespace rc
