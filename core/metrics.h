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

// A fixed-bucket histogram with the same single-writer rule (Prometheus
// semantics: bucket i counts observations <= bounds[i]; +Inf is count()).
template <std::size_t N>
class Histogram {
 public:
  explicit constexpr Histogram(const std::uint64_t (&bounds)[N]) {
    for (std::size_t i = 0; i < N; ++i) bounds_[i] = bounds[i];
  }
  void observe(std::uint64_t v) {
    for (std::size_t i = 0; i < N; ++i) {
      if (v <= bounds_[i]) buckets_[i].add();
    }
    count_.add();
    sum_.add(v);
  }
  std::size_t size() const { return N; }
  std::uint64_t bound(std::size_t i) const { return bounds_[i]; }
  std::uint64_t bucket(std::size_t i) const { return buckets_[i].get(); }
  std::uint64_t count() const { return count_.get(); }
  std::uint64_t sum() const { return sum_.get(); }

 private:
  std::uint64_t bounds_[N] = {};
  Counter buckets_[N];
  Counter count_;
  Counter sum_;
};

}  // namespace rc
