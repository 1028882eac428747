// The TLS path of a connection: decrypting what arrives, encrypting what is
// queued, and ending the session.

#include <span>

#include "core/log.h"
#include "core/shard_impl.h"

namespace rc {

// ---- TLS: ciphertext in, plaintext to the app through the input buffer;
// queued plaintext frames are encrypted in queue order at flush time, so
// TLS records go out in the order they were made.
void Shard::Impl::tls_input(Conn* k, std::uint32_t slot, const std::uint8_t* data,
                            std::size_t len) {
  const bool first = !k->tls->handshake_done();
  tls::Session::Result r = k->tls->feed(data, len);
  if (r == tls::Session::Result::kError) {
    if (first && !tls::looks_like_client_hello({data, len})) {
      // Not a TLS client: nothing it could read is sent back.
      RC_DEBUG("connection {}: not TLS on the TLS port", id_of(k, slot));
      peer_gone(k, slot, CloseReason::kError);
      return;
    }
    RC_DEBUG("connection {}: TLS error: {}", id_of(k, slot), k->tls->error());
    tls_end(k, slot, CloseReason::kError);  // with the alert that says why
    return;
  }
  for (;;) {
    tls_plain.clear();
    tls::Session::Result rr = k->tls->read_plain(tls_plain, limits::recv_buffer_bytes);
    if (!tls_plain.empty()) {
      if (!append_input(k, reinterpret_cast<const std::uint8_t*>(tls_plain.data()),
                        tls_plain.size())) {
        peer_gone(k, slot, CloseReason::kOverflow);
        return;
      }
    }
    if (rr == tls::Session::Result::kClosed || rr == tls::Session::Result::kError) r = rr;
    if (rr != tls::Session::Result::kOk || tls_plain.empty()) break;
  }
  if (r == tls::Session::Result::kError) {
    RC_DEBUG("connection {}: TLS error: {}", id_of(k, slot), k->tls->error());
    tls_end(k, slot, CloseReason::kError);
    return;
  }
  if (r == tls::Session::Result::kClosed) {
    if (k->input.size > 0) feed_input(k, slot);  // what came before the close_notify
    if (k->state == Conn::kOpen) tls_end(k, slot, CloseReason::kPeerEof);  // answered by ours
    return;
  }
  tls_flush_output(k, slot);
  if (k->input.size > 0) feed_input(k, slot);
}

// The session ended from the TLS side (an error, or the peer's close_notify):
// the app lets go of the connection at once, while the engine's last words
// (an alert, a close_notify) still go out before the socket closes.
void Shard::Impl::tls_end(Conn* k, std::uint32_t slot, CloseReason why) {
  tls_flush_output(k, slot);
  if (k->head == nullptr && k->send_op == nullptr) {
    peer_gone(k, slot, why);
    return;
  }
  start_draining(k, slot);
  app->on_closed(id_of(k, slot), why);
}

// Encrypts every plaintext frame still queued, in order.
void Shard::Impl::tls_encrypt_queue(Conn* k) {
  for (SendNode* nd = k->head; nd != nullptr; nd = nd->next) {
    if (nd->cipher) continue;
    const std::size_t plain = nd->frame.size();
    k->tls->write_plain(nd->frame.data(), plain);
    std::span<const std::uint8_t> out = k->tls->pending_output();
    nd->frame = FrameRef::copy_of({reinterpret_cast<const char*>(out.data()), out.size()});
    k->tls->consumed(out.size());
    nd->cipher = true;
    k->unsent = k->unsent - plain + nd->frame.size();
  }
}

// Queues what the TLS engine wants sent (handshake, alerts) after every
// frame encrypted before it.
void Shard::Impl::tls_flush_output(Conn* k, std::uint32_t slot) {
  tls_encrypt_queue(k);
  std::span<const std::uint8_t> out = k->tls->pending_output();
  if (out.empty()) return;
  enqueue(k, slot, FrameRef::copy_of({reinterpret_cast<const char*>(out.data()), out.size()}),
          /*cipher=*/true);
  k->tls->consumed(out.size());
}

}  // namespace rc
