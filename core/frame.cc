#include "core/frame.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace rc::frame_pool {
namespace {

// Size classes 2^7 .. 2^22 bytes; larger frames go straight to the allocator.
constexpr std::uint8_t kMinShift = 7;
constexpr std::uint8_t kMaxShift = 22;
constexpr std::uint8_t kDirect = 0xff;
// Free blocks kept per class: enough for a burst of ticks, bounded so a spike
// does not pin memory for ever.
constexpr std::size_t kCachedPerClassMax = 4096;
constexpr std::size_t kCachedBytesPerClassMax = 8u << 20;

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
};

struct Pool {
  FreeList lists[kMaxShift + 1];
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
  } else if (FreeList& l = pool.lists[cls]; l.head != nullptr) {
    b = l.head;
    l.head = next_of(b);
    --l.count;
  } else {
    b = make(std::size_t{1} << cls, cls);
  }
  b->refs = 1;
  b->bytes = 0;
  return b;
}

void release(FrameBlock* b) {
  RC_ASSERT(b->refs == 0);
  if (b->size_class == kDirect) {
    std::free(b);
    return;
  }
  FreeList& l = pool.lists[b->size_class];
  std::size_t cap_blocks =
      std::min(kCachedPerClassMax, kCachedBytesPerClassMax >> b->size_class);
  if (l.count >= cap_blocks) {
    std::free(b);
    return;
  }
  set_next(b, l.head);
  l.head = b;
  ++l.count;
}

std::size_t cached_blocks() {
  std::size_t n = 0;
  for (const FreeList& l : pool.lists) n += l.count;
  return n;
}

}  // namespace rc::frame_pool
