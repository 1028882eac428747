// The public Shard methods the app calls on the shard's thread, and the two
// that other threads call (deliver_mail, wake_from_outside).

#include "core/shard.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

#include "core/assert.h"
#include "core/shard_impl.h"

namespace rc {

Shard::Shard(ShardGroup& group, ShardOptions opts)
    : group_(group), opts_(std::move(opts)), impl_(std::make_unique<Impl>(*this)) {}

Shard::~Shard() = default;

ShardStats& Shard::stats() {
  return group_.stats(opts_.index);
}

std::uint64_t Shard::send(ConnId id, FrameRef frame) {
  Conn* k = impl_->lookup(id);
  if (k == nullptr || k->state != Conn::kOpen || !frame || frame.size() == 0) return 0;
  impl_->enqueue(k, static_cast<std::uint32_t>(id), std::move(frame), /*cipher=*/false);
  stats().frames_out_total.add();
  return k->unsent;
}

std::uint64_t Shard::unsent_bytes(ConnId id) const {
  Conn* k = impl_->lookup(id);
  return k == nullptr ? 0 : k->unsent;
}

void Shard::watch_drain(ConnId id, std::uint64_t low_water_bytes) {
  Conn* k = impl_->lookup(id);
  if (k == nullptr) return;
  k->drain_watch = true;
  k->low_water = low_water_bytes;
}

void Shard::set_streaming(ConnId id) {
  Conn* k = impl_->lookup(id);
  if (k != nullptr) k->streaming = true;
}

void Shard::set_app_data(ConnId id, void* data) {
  Conn* k = impl_->lookup(id);
  if (k != nullptr) k->app_data = data;
}

void* Shard::app_data(ConnId id) const {
  Conn* k = impl_->lookup(id);
  return k == nullptr ? nullptr : k->app_data;
}

bool Shard::is_open(ConnId id) const {
  Conn* k = impl_->lookup(id);
  return k != nullptr && k->state == Conn::kOpen;
}

std::string Shard::peer(ConnId id) const {
  Conn* k = impl_->lookup(id);
  if (k == nullptr || k->fd < 0) return "?";
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getpeername(k->fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return fmt::format("{}:{}", host, port);
}

void Shard::close(ConnId id) {
  Conn* k = impl_->lookup(id);
  if (k == nullptr || k->state != Conn::kOpen) return;
  std::uint32_t slot = static_cast<std::uint32_t>(id);
  if (k->tls != nullptr) {
    // Frames already queued are encrypted before the close_notify alert.
    impl_->tls_encrypt_queue(k);
    k->tls->close_notify();
    impl_->tls_flush_output(k, slot);
  }
  impl_->start_draining(k, slot);
  if (k->head == nullptr && k->send_op == nullptr) impl_->start_linger(k, slot);
}

void Shard::handoff(ConnId id, std::uint32_t target_shard, void* payload) {
  Conn* k = impl_->lookup(id);
  RC_ASSERT(k != nullptr && k->state == Conn::kOpen && !k->recv_armed);
  // Only transport bytes (a TLS handshake's last flight) may still be queued;
  // the hand-off waits for them to go out.
  for (SendNode* nd = k->head; nd != nullptr; nd = nd->next) RC_ASSERT(nd->cipher);
  RC_ASSERT(target_shard < group_.size() && target_shard != opts_.index);
  k->state = Conn::kHandoff;
  k->handoff_target = target_shard;
  k->handoff_payload = payload;
}

bool Shard::post(std::uint32_t target_shard, Mail&& mail) {
  Shard& t = group_.shard(target_shard);
  if (!t.deliver_mail(std::move(mail))) return false;
  if (!t.impl_->wake_pending.exchange(true, std::memory_order_acq_rel)) {
    int fd = t.ring_fd();
    if (fd >= 0) {
      impl_->ring->msg_ring(fd, 0, Impl::pack(Impl::kOpWake, 0, 0));
    } else {
      t.wake_from_outside();
    }
  }
  return true;
}

bool Shard::deliver_mail(Mail&& mail) {
  return impl_->mailbox.try_push(std::move(mail));
}

void Shard::wake_from_outside() {
  std::uint64_t one = 1;
  if (impl_->event_fd >= 0) {
    ssize_t rc = ::write(impl_->event_fd, &one, sizeof one);
    (void)rc;
  }
}

}  // namespace rc
