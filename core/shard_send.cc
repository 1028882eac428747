// Sending: one sendmsg per connection with queued frames per loop turn, and
// what its completion releases.

#include <cstring>

#include "core/assert.h"
#include "core/log.h"
#include "core/shard_impl.h"

namespace rc {

void Shard::Impl::on_send(const Completion& c) {
  std::uint32_t slot = slot_of(c.user_data);
  Conn* k = slot_ptr(slot);
  RC_ASSERT(k != nullptr && k->gen == gen_of(c.user_data) && k->send_op != nullptr);
  free_op(k->send_op);
  k->send_op = nullptr;
  if (c.res < 0) {
    RC_DEBUG("send on connection {}: {}", id_of(k, slot), std::strerror(-c.res));
    if (k->state == Conn::kOpen && k->recv_armed) {
      // The peer is gone, but what it sent last may still be unread: a
      // close frame above all, which makes its leave a clean one. The
      // receive reads it, then ends the connection; sweep_closing does if
      // it never ends.
      k->send_failed = true;
      drop_queue(k);
      k->close_deadline_ms = s.now_ms_ + s.opts_.linger_ms;
      closing.push_back(id_of(k, slot));
      return;
    }
    if (k->state == Conn::kOpen) {
      peer_gone(k, slot, CloseReason::kError);
    } else {
      finish_close(k, slot);
    }
    maybe_release(k, slot);
    return;
  }
  std::size_t sent = static_cast<std::size_t>(c.res);
  stats().bytes_out_total.add(sent);
  consume_sent(k, sent);
  if (k->state == Conn::kDead) {
    maybe_release(k, slot);
    return;
  }
  if (k->state == Conn::kHandoff && k->head == nullptr) {
    finish_handoff(k, slot);
    return;
  }
  if (k->head != nullptr) {
    mark_dirty(k, slot);
  } else if (k->state == Conn::kDraining) {
    start_linger(k, slot);
  }
  if (k->drain_watch && k->state == Conn::kOpen && k->unsent < k->low_water) {
    k->drain_watch = false;
    app->on_drained(id_of(k, slot));
  }
}

void Shard::Impl::consume_sent(Conn* k, std::size_t sent) {
  k->unsent -= sent;
  while (sent > 0) {
    SendNode* nd = k->head;
    RC_ASSERT(nd != nullptr);
    std::size_t left = nd->frame.size() - k->head_offset;
    if (sent < left) {
      k->head_offset += static_cast<std::uint32_t>(sent);
      return;
    }
    sent -= left;
    k->head_offset = 0;
    k->head = nd->next;
    if (k->head == nullptr) k->tail = nullptr;
    free_node(nd);
  }
}

void Shard::Impl::flush_sends() {
  for (std::uint32_t slot : dirty) {
    Conn* k = slot_ptr(slot);
    k->dirty = false;
    if (k->send_op != nullptr || k->head == nullptr || k->fd < 0) continue;
    if (k->state != Conn::kOpen && k->state != Conn::kDraining && k->state != Conn::kHandoff)
      continue;
    if (k->tls != nullptr) tls_encrypt_queue(k);
    start_send(k, slot);
  }
  dirty.clear();
}

void Shard::Impl::start_send(Conn* k, std::uint32_t slot) {
  SendOp* o = op();
  std::uint32_t n = 0;
  std::uint32_t offset = k->head_offset;
  for (SendNode* nd = k->head; nd != nullptr && n < limits::send_iovecs_max; nd = nd->next) {
    o->iov[n].iov_base = nd->frame.data() + offset;
    o->iov[n].iov_len = nd->frame.size() - offset;
    offset = 0;
    ++n;
  }
  k->send_op = o;
  if (n == 1) {
    // The common case (one delta per tick): a plain send, no msghdr to copy.
    ring->send(socket_of(k, slot), o->iov[0].iov_base, o->iov[0].iov_len, pack(kOpSend, slot, k->gen));
    return;
  }
  o->msg = msghdr{};
  o->msg.msg_iov = o->iov;
  o->msg.msg_iovlen = n;
  ring->sendmsg(socket_of(k, slot), &o->msg, pack(kOpSend, slot, k->gen));
}

}  // namespace rc
