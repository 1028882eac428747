#pragma once
// A bounded, lock-free, multi-producer single-consumer queue.
//
// Contract
// - Capacity is a power of two (at least 2) fixed at compile time; the slots
//   are allocated once, in the constructor, and never again.
// - try_push() may be called from any number of threads at once. It never
//   blocks and never allocates: when every slot is taken it returns false and
//   leaves the argument untouched (the caller still owns it).
// - try_pop() and drain() belong to exactly one consumer thread at a time.
//   Handing the consumer role to another thread needs a happens-before edge
//   between them (a join, a mutex, a release/acquire pair).
// - Items pushed by one thread come out in the order that thread pushed them.
//   Across producers, items come out in the order their slots were claimed.
// - Caveat: a producer that has claimed a slot but not yet filled it holds
//   back the items claimed after it. try_pop() reports "nothing ready" in
//   that window, even though later items are already stored; they appear as
//   soon as the slow producer finishes its (short, non-blocking) copy.
// - Items still queued when the queue is destroyed are destroyed with it.
//
// The design is the classic array queue with one sequence number per slot
// (D. Vyukov): a slot's sequence says whether it is free for the producer
// that claims position p (seq == p), or full for the consumer at p
// (seq == p + 1). Producers claim positions with a CAS on one shared
// counter; the consumer owns the other counter outright.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace rc {

template <typename T, std::size_t Capacity>
class MpscQueue {
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0,
                "MpscQueue capacity must be a power of two, at least 2");
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "a push must not fail half-way: T needs a noexcept move constructor");

 public:
  MpscQueue() : cells_(new Cell[Capacity]) {
    for (std::size_t i = 0; i < Capacity; ++i) {
      cells_[i].seq.store(i, std::memory_order_relaxed);
    }
  }
  // No thread may push or pop any more; items still stored are destroyed.
  ~MpscQueue() {
    for (std::size_t pos = dequeue_pos_.load(std::memory_order_relaxed);; ++pos) {
      Cell& cell = cells_[pos & kMask];
      if (cell.seq.load(std::memory_order_acquire) != pos + 1) break;
      std::launder(reinterpret_cast<T*>(cell.storage))->~T();
    }
  }
  MpscQueue(const MpscQueue&) = delete;
  MpscQueue& operator=(const MpscQueue&) = delete;

  static constexpr std::size_t capacity() { return Capacity; }

  // Any thread. Moves `v` into the queue and returns true, or returns false
  // (v unchanged) when the queue is full.
  bool try_push(T&& v) {
    std::size_t pos = enqueue_pos_.load(std::memory_order_relaxed);
    Cell* cell;
    for (;;) {
      cell = &cells_[pos & kMask];
      const std::size_t seq = cell->seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos);
      if (diff == 0) {
        // The slot is free for position pos; claim the position.
        if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
        // The failed CAS reloaded pos; try again with it.
      } else if (diff < 0) {
        return false;  // the slot still holds the item from one lap ago: full
      } else {
        pos = enqueue_pos_.load(std::memory_order_relaxed);  // another producer got ahead
      }
    }
    ::new (static_cast<void*>(cell->storage)) T(std::move(v));
    cell->seq.store(pos + 1, std::memory_order_release);  // publish to the consumer
    return true;
  }

  // Consumer thread only. Moves the oldest ready item into `out` and returns
  // true, or returns false when nothing is ready (see the caveat above).
  bool try_pop(T& out) {
    const std::size_t pos = dequeue_pos_.load(std::memory_order_relaxed);
    Cell& cell = cells_[pos & kMask];
    const std::size_t seq = cell.seq.load(std::memory_order_acquire);
    if (seq != pos + 1) return false;
    T* item = std::launder(reinterpret_cast<T*>(cell.storage));
    out = std::move(*item);
    item->~T();
    // Free the slot for the producer that will claim it one lap later.
    cell.seq.store(pos + Capacity, std::memory_order_release);
    dequeue_pos_.store(pos + 1, std::memory_order_relaxed);
    return true;
  }

  // Any thread; a hint only. True when every claimed slot has been popped;
  // a push in progress counts as "not empty".
  bool empty_approx() const {
    return enqueue_pos_.load(std::memory_order_acquire) ==
           dequeue_pos_.load(std::memory_order_acquire);
  }

 private:
  static constexpr std::size_t kMask = Capacity - 1;
  // Producers hammer enqueue_pos_ and the consumer writes dequeue_pos_: keep
  // them on separate cache lines so neither side invalidates the other's line.
  static constexpr std::size_t kCacheLine = 64;

  struct Cell {
    std::atomic<std::size_t> seq{0};
    alignas(T) unsigned char storage[sizeof(T)];
  };

  std::unique_ptr<Cell[]> cells_;
  alignas(kCacheLine) std::atomic<std::size_t> enqueue_pos_{0};
  alignas(kCacheLine) std::atomic<std::size_t> dequeue_pos_{0};
};

}  // namespace rc
