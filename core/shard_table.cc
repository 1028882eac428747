// The connection table, the send-node and send-op pools, the per-connection
// input buffer, and giving memory back to the system after a burst.

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/assert.h"
#include "core/shard_impl.h"

namespace rc {

namespace {

constexpr std::uint32_t kFreeOpsKept = 256;  // send ops always kept for reuse
// A burst that makes settle_heap give memory back.
constexpr std::size_t kTrimAfterFreedBytes = 4u << 20;
constexpr std::uint32_t kTrimAfterReleasedConns = 1000;

}  // namespace

// ---- connection table

Shard::Conn* Shard::Impl::allocate(std::uint32_t& slot_out) {
  if (free_slots.empty()) {
    if (chunks.size() * kChunkSlots >= limits::connections_per_shard_max) return nullptr;
    std::uint32_t base = static_cast<std::uint32_t>(chunks.size()) * kChunkSlots;
    chunks.emplace_back(new Conn[kChunkSlots]);
    for (std::uint32_t i = kChunkSlots; i-- > 0;) free_slots.push_back(base + i);
  }
  std::uint32_t slot = free_slots.back();
  free_slots.pop_back();
  Conn* k = slot_ptr(slot);
  std::uint32_t gen = (k->gen + 1) & kGenMask;
  *k = Conn{};
  k->gen = gen == 0 ? 1 : gen;
  k->state = Conn::kOpen;
  ++slots_used;
  stats().connections.add();
  slot_out = slot;
  return k;
}

void Shard::Impl::release_slot(Conn* k, std::uint32_t slot) {
  RC_ASSERT(k->send_op == nullptr && !k->recv_armed);
  drop_queue(k);
  free_input(k);
  delete k->tls;
  if (k->fixed) {
    // Nothing of this connection is in flight any more; operations queued
    // for a later connection in this slot come after this in the queue.
    ring->clear_file(slot, pack(kOpFiles, slot, k->gen));
  }
  std::uint32_t gen = k->gen;
  *k = Conn{};
  k->gen = gen;
  free_slots.push_back(slot);
  --slots_used;
  ++released_since_sweep;
  stats().connections.sub();
}

void Shard::Impl::enqueue(Conn* k, std::uint32_t slot, FrameRef frame, bool cipher) {
  if (k->send_failed) return;  // nowhere to go
  SendNode* nd = node();
  k->unsent += frame.size();
  nd->frame = std::move(frame);
  nd->cipher = cipher;
  if (k->tail == nullptr) {
    k->head = k->tail = nd;
  } else {
    k->tail->next = nd;
    k->tail = nd;
  }
  mark_dirty(k, slot);
}

void Shard::Impl::start_draining(Conn* k, std::uint32_t slot) {
  k->state = Conn::kDraining;
  k->drain_watch = false;
  free_input(k);
  k->close_deadline_ms = s.now_ms_ + s.opts_.linger_ms;
  closing.push_back(id_of(k, slot));
}

// ---- send queue nodes (a pool that grows in chunks and never shrinks) and
// send ops (see op())

Shard::SendNode* Shard::Impl::node() {
  if (free_nodes == nullptr) {
    node_chunks.emplace_back(new SendNode[kSendNodesPerChunk]);
    SendNode* c = node_chunks.back().get();
    for (std::size_t i = 0; i < kSendNodesPerChunk; ++i) {
      c[i].next = free_nodes;
      free_nodes = &c[i];
    }
  }
  SendNode* nd = free_nodes;
  free_nodes = nd->next;
  nd->next = nullptr;
  nd->cipher = false;
  return nd;
}

void Shard::Impl::free_node(SendNode* nd) {
  nd->frame.reset();
  nd->next = free_nodes;
  free_nodes = nd;
}

// Ops are allocated one by one and kept on a free list that follows the
// traffic: settle_heap trims it once a second to what the busiest moment
// of that second needed (a join storm has one op in flight per connection
// at once; steady ticks need the same number every tick).
Shard::SendOp* Shard::Impl::op() {
  if (++ops_in_use > ops_peak) ops_peak = ops_in_use;
  if (free_ops == nullptr) return new SendOp;
  SendOp* o = free_ops;
  free_ops = o->next_free;
  --free_op_count;
  return o;
}

void Shard::Impl::free_op(SendOp* o) {
  --ops_in_use;
  o->next_free = free_ops;
  free_ops = o;
  ++free_op_count;
}

// Frees the ops the last second did not need; returns the bytes freed.
std::size_t Shard::Impl::trim_free_ops() {
  const std::uint32_t keep = std::max(kFreeOpsKept, ops_peak);
  std::size_t freed = 0;
  while (free_op_count > keep) {
    delete std::exchange(free_ops, free_ops->next_free);
    --free_op_count;
    freed += sizeof(SendOp);
  }
  ops_peak = ops_in_use;
  return freed;
}

void Shard::Impl::drop_queue(Conn* k) {
  while (k->head != nullptr) {
    SendNode* nd = k->head;
    k->head = nd->next;
    free_node(nd);
  }
  k->tail = nullptr;
  k->unsent = 0;
  k->head_offset = 0;
}

// After a burst (a join storm's welcomes, a mass disconnect) the allocator
// keeps the freed memory, in holes between live objects that its own trim
// at the top of the heap cannot reach. Once such a burst is over (called
// once a second), hand the free pages back, so resident memory follows the
// live sessions. Never during steady heavy traffic: what it frees, it
// allocates again at once.
void Shard::Impl::settle_heap() {
  const std::size_t freed_now = frame_pool::trim() + trim_free_ops();
  const std::uint32_t released_now = released_since_sweep;
  freed_since_trim += freed_now;
  released_since_trim += released_now;
  released_since_sweep = 0;
  const bool burst =
      freed_since_trim >= kTrimAfterFreedBytes || released_since_trim >= kTrimAfterReleasedConns;
  // What the pools freed is what the last second no longer needed: the
  // burst is over unless connections are still going away.
  const bool calm = released_now < kTrimAfterReleasedConns / 4;
  if (!burst || !calm) return;
  freed_since_trim = 0;
  released_since_trim = 0;
  malloc_trim(0);
  stats().heap_trims_total.add();
}

// ---- input buffer

void Shard::Impl::free_input(Conn* k) {
  std::free(k->input.data);
  k->input = InputBuffer{};
}

bool Shard::Impl::append_input(Conn* k, const std::uint8_t* data, std::size_t len) {
  std::size_t need = k->input.size + len;
  if (need > s.opts_.input_bytes_max) return false;
  if (need > k->input.capacity) {
    // Doubling (from a first 256 bytes) keeps a frame arriving in many small
    // reads linear in its size; never past the per-connection bound.
    std::size_t cap = std::max<std::size_t>(
        need, std::min<std::size_t>(s.opts_.input_bytes_max, k->input.capacity * 2 + 256));
    void* mem = std::realloc(k->input.data, cap + limits::read_padding_bytes);
    if (mem == nullptr) return false;
    k->input.data = static_cast<std::uint8_t*>(mem);
    k->input.capacity = static_cast<std::uint32_t>(cap);
  }
  std::memcpy(k->input.data + k->input.size, data, len);
  k->input.size = static_cast<std::uint32_t>(need);
  std::memset(k->input.data + need, 0, limits::read_padding_bytes);
  return true;
}

void Shard::Impl::consume_input(Conn* k, std::size_t n) {
  RC_ASSERT(n <= k->input.size);
  if (n == k->input.size) {
    free_input(k);
    return;
  }
  std::memmove(k->input.data, k->input.data + n, k->input.size - n);
  k->input.size -= static_cast<std::uint32_t>(n);
}

}  // namespace rc
