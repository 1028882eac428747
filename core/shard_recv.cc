// Receiving: accepting connections, receive completions, and handing the
// bytes to the app.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/assert.h"
#include "core/log.h"
#include "core/shard_impl.h"

namespace rc {

void Shard::Impl::arm_recv(Conn* k, std::uint32_t slot) {
  RC_ASSERT(!k->recv_armed && k->fd >= 0);
  std::uint64_t ud = pack(kOpRecv, slot, k->gen);
  if (k->streaming) {
    ring->recv_multishot(socket_of(k, slot), kBufferGroup, ud);
  } else {
    ring->recv_once(socket_of(k, slot), kBufferGroup, ud);
  }
  k->recv_armed = true;
}

void Shard::Impl::register_file(Conn* k, std::uint32_t slot) {
  if (slot >= ring->file_slots()) return;
  // Reads k->fd when submitted: a connection closed before then empties the
  // slot instead (finish_close sets fd to -1), which is what it needs anyway.
  ring->update_file(slot, &k->fd, pack(kOpFiles, slot, k->gen));
  k->fixed = true;
}

void Shard::Impl::on_accept(const Completion& c) {
  if (!c.more()) accept_armed = false;
  if (c.res < 0) {
    if (c.res != -ECANCELED) RC_WARN("accept: {}", std::strerror(-c.res));
    return;
  }
  int fd = c.res;
  std::uint32_t slot;
  Conn* k = allocate(slot);
  if (k == nullptr) {
    ::close(fd);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  k->fd = fd;
  register_file(k, slot);
  if (tls_thread) k->tls = new tls::Session(*tls_thread);
  stats().accepted_total.add();
  ConnId id = id_of(k, slot);
  app->on_open(id);
  if (lookup(id) == k && k->state == Conn::kOpen) arm_recv(k, slot);
}

void Shard::Impl::on_recv(const Completion& c) {
  std::uint32_t slot = slot_of(c.user_data);
  Conn* k = slot_ptr(slot);
  std::uint8_t* buf = c.has_buffer() ? ring->buffer(c.buffer_id()) : nullptr;
  RC_ASSERT(k != nullptr && k->gen == gen_of(c.user_data) && k->recv_armed);
  if (!c.more()) k->recv_armed = false;
  ConnId id = id_of(k, slot);
  if (c.res > 0) {
    stats().bytes_in_total.add(static_cast<std::uint64_t>(c.res));
    if (k->state == Conn::kOpen) {
      if (k->tls != nullptr) {
        tls_input(k, slot, buf, static_cast<std::size_t>(c.res));
      } else {
        deliver(k, slot, buf, static_cast<std::size_t>(c.res));
      }
    }
  }
  if (buf != nullptr) ring->recycle_buffer(c.buffer_id());
  if (c.res == 0 || (c.res < 0 && c.res != -ENOBUFS && c.res != -ECANCELED)) {
    if (c.res < 0) RC_DEBUG("recv on connection {}: {}", id, std::strerror(-c.res));
    if (k->state == Conn::kOpen) {
      peer_gone(k, slot, c.res == 0 ? CloseReason::kPeerEof : CloseReason::kError);
    } else if (k->state == Conn::kDraining || k->state == Conn::kLinger) {
      finish_close(k, slot);
    }
  } else if (c.res == -ENOBUFS && k->state != Conn::kDead && k->state != Conn::kHandoff) {
    // The buffer ring ran dry; buffers come back during this turn, so the
    // receive is re-armed at its end rather than spinning on ENOBUFS now.
    stats().recv_nobufs_total.add();
    if (!k->recv_armed) rearm.push_back(id);
    return;
  }
  after_recv(k, slot);
}

// Re-arms the receive if the connection still wants one; frees dead slots.
void Shard::Impl::after_recv(Conn* k, std::uint32_t slot) {
  switch (k->state) {
    case Conn::kOpen:
    case Conn::kDraining:
    case Conn::kLinger:
      if (!k->recv_armed) arm_recv(k, slot);
      break;
    case Conn::kDead:
      maybe_release(k, slot);
      break;
    case Conn::kHandoff:
      if (k->head == nullptr && k->send_op == nullptr) finish_handoff(k, slot);
      break;
    case Conn::kFree:
      break;
  }
}

// Offers bytes to the app until it stops making progress: one read may hold
// a request head and the first frames after it, which the app consumes in
// two phases.
void Shard::Impl::deliver(Conn* k, std::uint32_t slot, std::uint8_t* data, std::size_t len) {
  ConnId id = id_of(k, slot);
  if (k->input.size == 0) {
    while (len > 0) {
      std::size_t used = app->on_data(id, data, len);
      if (k->state != Conn::kOpen) {
        if (k->state == Conn::kHandoff && used < len && !append_input(k, data + used, len - used)) {
          peer_gone(k, slot, CloseReason::kOverflow);
        }
        return;
      }
      RC_ASSERT(used <= len);
      if (used == 0) break;
      data += used;
      len -= used;
    }
    if (len > 0 && !append_input(k, data, len)) peer_gone(k, slot, CloseReason::kOverflow);
    return;
  }
  if (!append_input(k, data, len)) {
    peer_gone(k, slot, CloseReason::kOverflow);
    return;
  }
  feed_input(k, slot);
}

void Shard::Impl::feed_input(Conn* k, std::uint32_t slot) {
  ConnId id = id_of(k, slot);
  while (k->input.size > 0) {
    std::size_t used = app->on_data(id, k->input.data, k->input.size);
    if (k->state != Conn::kOpen && k->state != Conn::kHandoff) return;
    consume_input(k, used);
    if (used == 0 || k->state != Conn::kOpen) return;
  }
}

}  // namespace rc
