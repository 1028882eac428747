// How a connection leaves: closing (drain, linger, close) and hand-off to
// another shard, and the receiving end of a hand-off (adoption).

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "core/log.h"
#include "core/shard_impl.h"

namespace rc {

// ---- closing

void Shard::Impl::peer_gone(Conn* k, std::uint32_t slot, CloseReason why) {
  ConnId id = id_of(k, slot);
  k->state = Conn::kDead;  // the app sees a connection it can no longer use
  app->on_closed(id, why);
  finish_close(k, slot, /*already_dead=*/true);
}

void Shard::Impl::start_linger(Conn* k, std::uint32_t slot) {
  k->state = Conn::kLinger;
  // A direct call, not IORING_OP_SHUTDOWN: that operation always runs in an
  // io-wq worker that looks the fd number up later, by when the number may
  // belong to a new connection. shutdown(2) on a socket never blocks.
  ::shutdown(k->fd, SHUT_WR);
  if (!k->recv_armed) arm_recv(k, slot);
}

void Shard::Impl::finish_close(Conn* k, std::uint32_t slot, bool already_dead) {
  if (k->state == Conn::kDead && !already_dead) return;
  if (k->state == Conn::kHandoff) {
    // Lost while its last transport bytes were going out: the app gets its
    // hand-off payload back to free it.
    app->on_adopt(0, k->handoff_payload);
    k->handoff_payload = nullptr;
  }
  k->state = Conn::kDead;
  if (k->recv_armed) ring->cancel(pack(kOpRecv, slot, k->gen), pack(kOpCancel, slot, k->gen));
  if (k->send_op != nullptr) {
    ring->cancel(pack(kOpSend, slot, k->gen), pack(kOpCancel, slot, k->gen));
  }
  if (k->fd >= 0) {
    // Operations queued this turn still name this fd number; it is closed
    // only after they are submitted, so a new connection cannot inherit it.
    closing_fds.push_back(k->fd);
    k->fd = -1;
  }
  free_input(k);
  maybe_release(k, slot);
}

void Shard::Impl::close_fds() {
  if (closing_fds.empty()) return;
  ring->submit();
  for (int fd : closing_fds) ::close(fd);
  closing_fds.clear();
}

void Shard::Impl::maybe_release(Conn* k, std::uint32_t slot) {
  if (k->state == Conn::kDead && !k->recv_armed && k->send_op == nullptr) release_slot(k, slot);
}

void Shard::Impl::sweep_closing(std::int64_t now) {
  std::size_t keep = 0;
  for (ConnId id : closing) {
    Conn* k = lookup(id);
    if (k == nullptr || k->state == Conn::kDead) continue;
    const bool send_failed = k->state == Conn::kOpen && k->send_failed;
    if (k->state != Conn::kDraining && k->state != Conn::kLinger && !send_failed) continue;
    if (now >= k->close_deadline_ms) {
      if (send_failed) {
        peer_gone(k, static_cast<std::uint32_t>(id), CloseReason::kError);
      } else {
        finish_close(k, static_cast<std::uint32_t>(id));
      }
      continue;
    }
    closing[keep++] = id;
  }
  closing.resize(keep);
}

// ---- handoff

void Shard::Impl::finish_handoff(Conn* k, std::uint32_t slot) {
  Mail m;
  m.kind = Mail::Kind::kAdopt;
  m.fd = k->fd;
  m.input = k->input;
  m.payload = k->handoff_payload;
  m.tls = k->tls;
  k->tls = nullptr;
  std::uint32_t target = k->handoff_target;
  k->input = InputBuffer{};
  k->fd = -1;
  k->state = Conn::kDead;
  release_slot(k, slot);
  if (!s.post(target, std::move(m))) {
    RC_ERROR("shard {} mailbox is full: dropping a connection being handed to it", target);
    drop_adopt_mail(m);
  }
  stats().handoffs_total.add();
}

void Shard::Impl::drop_adopt_mail(Mail& m) {
  ::close(m.fd);
  std::free(m.input.data);
  delete static_cast<tls::Session*>(m.tls);
  if (app) app->on_adopt(0, m.payload);
}

void Shard::Impl::adopt(Mail& m) {
  std::uint32_t slot;
  Conn* k = allocate(slot);
  if (k == nullptr) {
    drop_adopt_mail(m);
    return;
  }
  k->fd = m.fd;
  register_file(k, slot);
  k->streaming = true;
  k->tls = static_cast<tls::Session*>(m.tls);
  // The handshake is over (the request head was read through it): from
  // here the session only encrypts and decrypts, with this shard's context.
  if (k->tls != nullptr) k->tls->rebind(*tls_thread);
  ConnId id = id_of(k, slot);
  app->on_adopt(id, m.payload);
  if (k->state == Conn::kHandoff) {
    // Passed on again (a ticket redeemed here for a room owned elsewhere).
    k->input = m.input;
    finish_handoff(k, slot);
    return;
  }
  if (lookup(id) != k || k->state != Conn::kOpen) {
    std::free(m.input.data);
    return;
  }
  k->input = m.input;
  if (k->input.size > 0) feed_input(k, slot);
  if (lookup(id) == k && k->state == Conn::kOpen && !k->recv_armed) arm_recv(k, slot);
}

}  // namespace rc
