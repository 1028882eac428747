#pragma once
// A latency histogram with bounded memory and bounded relative error, in the
// manner of HdrHistogram: values below 64 are counted exactly; above, each
// power of two is split into 64 equal buckets, so a reported percentile is
// within 1/64 (1.6 %) above the true sample. Values past 2^40 (about 12 days
// in microseconds) land in the last bucket. About 20 KiB per histogram.
//
// Not thread-safe: one per thread, merged at the end.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace rc::load {

class Histogram {
 public:
  static constexpr unsigned kSubBits = 6;
  static constexpr std::uint64_t kSub = 1u << kSubBits;  // buckets per power of two
  static constexpr unsigned kTopExponent = 40;
  static constexpr std::size_t kBuckets = kSub + (kTopExponent - kSubBits + 1) * kSub;

  void add(std::uint64_t v) {
    ++counts_[index_of(v)];
    ++count_;
    sum_ += v;
    if (v > max_) max_ = v;
    if (count_ == 1 || v < min_) min_ = v;
  }

  void merge(const Histogram& o) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    if (o.count_ != 0 && (count_ == 0 || o.min_ < min_)) min_ = o.min_;
    count_ += o.count_;
    sum_ += o.sum_;
    if (o.max_ > max_) max_ = o.max_;
  }

  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The smallest bucket bound at or below which at least q (0..1] of the
  // samples lie, capped at the largest sample; 0 when empty.
  std::uint64_t percentile(double q) const {
    if (count_ == 0) return 0;
    std::uint64_t rank = static_cast<std::uint64_t>(q * static_cast<double>(count_) + 0.5);
    if (rank < 1) rank = 1;
    if (rank > count_) rank = count_;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        const std::uint64_t upper = upper_bound_of(i);
        return upper < max_ ? upper : max_;
      }
    }
    return max_;
  }

  static std::size_t index_of(std::uint64_t v) {
    if (v < kSub) return static_cast<std::size_t>(v);
    unsigned e = 63u - static_cast<unsigned>(std::countl_zero(v));  // >= kSubBits
    if (e > kTopExponent) return kBuckets - 1;
    const unsigned shift = e - kSubBits;
    const std::uint64_t sub = (v >> shift) - kSub;  // 0..kSub-1
    return static_cast<std::size_t>(kSub + (e - kSubBits) * kSub + sub);
  }

  // The largest value that index_of maps to bucket i.
  static std::uint64_t upper_bound_of(std::size_t i) {
    if (i < kSub) return i;
    const std::size_t k = i - kSub;
    const unsigned shift = static_cast<unsigned>(k / kSub);
    const std::uint64_t sub = k % kSub;
    return ((kSub + sub + 1) << shift) - 1;
  }

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = 0;
};

}  // namespace rc::load
