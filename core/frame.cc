#include "core/frame.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace rc::frame_pool {
namespace {

// Size classes 2^7 .. 2^22 bytes; larger frames go straight to the allocator.
constexpr std::uint8_t kMinShift = 7;
constexpr std::uint8_t kMaxShift = 22;
constexpr std::uint8_t kDirect = 0xff;
// Free blocks kept per class follow the traffic: trim() (once a second)
// keeps what the busiest moment of the last second had in use, so steady
// ticks reuse their blocks and a spike (every welcome of a join storm in
// flight at once) goes back to the allocator once it is over. Between trims
// a class caches at most this much.
constexpr std::size_t kCachedBytesPerClassMax = 8u << 20;
constexpr std::size_t kKeptBlocksMin = 8;  // per class, whatever the traffic

// A free block keeps the next free block's address in its first data bytes
// (memcpy: data has no pointer alignment).
FrameBlock* next_of(FrameBlock* b) {
  FrameBlock* next;
  std::memcpy(&next, b->data, sizeof next);
  return next;
}
void set_next(FrameBlock* b, FrameBlock* next) { std::memcpy(b->data, &next, sizeof next); }

struct FreeList {
  FrameBlock* head = nullptr;
  std::size_t count = 0;
  std::size_t in_use = 0;
  std::size_t peak_in_use = 0;  // since the last trim
};

struct Pool {
  FreeList lists[kMaxShift + 1];
  std::size_t freed_bytes = 0;  // given back to the allocator since the last trim
  ~Pool() {
    for (FreeList& l : lists) {
      while (l.head != nullptr) {
        FrameBlock* next = next_of(l.head);
        std::free(l.head);
        l.head = next;
      }
    }
  }
};

thread_local Pool pool;

std::uint8_t class_for(std::size_t bytes) {
  std::uint8_t shift = kMinShift;
  while (shift <= kMaxShift && (std::size_t{1} << shift) < bytes) ++shift;
  return shift > kMaxShift ? kDirect : shift;
}

FrameBlock* make(std::size_t capacity, std::uint8_t cls) {
  void* mem = std::malloc(sizeof(FrameBlock) + capacity);
  if (mem == nullptr) throw std::bad_alloc();
  FrameBlock* b = static_cast<FrameBlock*>(mem);
  b->capacity = static_cast<std::uint32_t>(capacity);
  b->size_class = cls;
  return b;
}

}  // namespace

FrameBlock* acquire(std::size_t bytes) {
  RC_ASSERT(bytes < (std::size_t{1} << 31));
  std::uint8_t cls = class_for(bytes == 0 ? 1 : bytes);
  FrameBlock* b;
  if (cls == kDirect) {
    b = make(bytes, kDirect);
  } else {
    FreeList& l = pool.lists[cls];
    if (++l.in_use > l.peak_in_use) l.peak_in_use = l.in_use;
    if (l.head != nullptr) {
      b = l.head;
      l.head = next_of(b);
      --l.count;
    } else {
      b = make(std::size_t{1} << cls, cls);
    }
  }
  b->refs = 1;
  b->bytes = 0;
  return b;
}

void release(FrameBlock* b) {
  RC_ASSERT(b->refs == 0);
  if (b->size_class == kDirect) {
    pool.freed_bytes += b->capacity;
    std::free(b);
    return;
  }
  FreeList& l = pool.lists[b->size_class];
  --l.in_use;
  if (l.count >= (kCachedBytesPerClassMax >> b->size_class)) {
    pool.freed_bytes += std::size_t{1} << b->size_class;
    std::free(b);
    return;
  }
  set_next(b, l.head);
  l.head = b;
  ++l.count;
}

std::size_t trim() {
  for (std::uint8_t cls = kMinShift; cls <= kMaxShift; ++cls) {
    FreeList& l = pool.lists[cls];
    const std::size_t keep = std::max(kKeptBlocksMin, l.peak_in_use);
    while (l.count > keep) {
      FrameBlock* next = next_of(l.head);
      std::free(l.head);
      l.head = next;
      --l.count;
      pool.freed_bytes += std::size_t{1} << cls;
    }
    l.peak_in_use = l.in_use;
  }
  return std::exchange(pool.freed_bytes, 0);
}

std::size_t cached_blocks() {
  std::size_t n = 0;
  for (const FreeList& l : pool.lists) n += l.count;
  return n;
}

}  // namespace rc::frame_pool
