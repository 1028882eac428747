#pragma once
// Outbound bytes shared by many connections of one shard.
//
// A delta is serialised once per room per tick into one Frame and the same
// Frame is queued to every member: N members cost one serialisation, N
// reference-count increments and N sends. Frames belong to the thread that
// made them (reference counts are plain integers): they never cross shards.
// Blocks come from a per-thread pool of power-of-two size classes, so steady
// traffic does not touch the allocator; trim() hands a spike's blocks back.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

#include "core/assert.h"

namespace rc {

struct FrameBlock {
  std::uint32_t refs;
  std::uint32_t bytes;     // bytes in use
  std::uint32_t capacity;  // bytes available in data
  std::uint8_t size_class;
  std::uint8_t data[];
};

namespace frame_pool {
// A block with room for at least `bytes` bytes, refs = 1, bytes = 0.
FrameBlock* acquire(std::size_t bytes);
void release(FrameBlock* block);
// Blocks currently cached in this thread's free lists (for tests and metrics).
std::size_t cached_blocks();
// Gives this thread's free blocks beyond what the busiest moment since the
// last call had in use back to the allocator (call it about once a second).
// Returns the bytes given back since the last call, these included.
std::size_t trim();
}  // namespace frame_pool

class FrameRef {
 public:
  FrameRef() = default;
  // A new frame with room for `capacity` bytes.
  static FrameRef allocate(std::size_t capacity) { return FrameRef(frame_pool::acquire(capacity)); }
  static FrameRef copy_of(std::string_view bytes) {
    FrameRef f = allocate(bytes.size());
    std::memcpy(f.data(), bytes.data(), bytes.size());
    f.set_size(bytes.size());
    return f;
  }

  FrameRef(const FrameRef& o) : b_(o.b_) {
    if (b_ != nullptr) ++b_->refs;
  }
  FrameRef(FrameRef&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
  FrameRef& operator=(FrameRef o) noexcept {
    std::swap(b_, o.b_);
    return *this;
  }
  ~FrameRef() { reset(); }

  void reset() {
    if (b_ != nullptr && --b_->refs == 0) frame_pool::release(b_);
    b_ = nullptr;
  }
  explicit operator bool() const { return b_ != nullptr; }
  std::uint8_t* data() const { return b_->data; }
  std::size_t size() const { return b_->bytes; }
  std::size_t capacity() const { return b_->capacity; }
  void set_size(std::size_t n) {
    RC_ASSERT(n <= b_->capacity);
    b_->bytes = static_cast<std::uint32_t>(n);
  }
  std::string_view view() const {
    return {reinterpret_cast<const char*>(b_->data), b_->bytes};
  }
  std::uint32_t ref_count() const { return b_ ? b_->refs : 0; }

 private:
  explicit FrameRef(FrameBlock* b) : b_(b) {}
  FrameBlock* b_ = nullptr;
};

}  // namespace rc
