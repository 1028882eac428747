#include "core/ring.h"

#include <fmt/format.h>
#include <liburing.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace rc {

struct Ring::Impl {
  io_uring ring{};
  bool initialized = false;
  // provided buffers
  io_uring_buf_ring* br = nullptr;
  std::size_t br_bytes = 0;
  std::uint8_t* bufs = nullptr;
  std::size_t bufs_bytes = 0;
  std::uint32_t buf_count = 0;
  std::uint32_t buf_stride = 0;
  std::uint16_t group = 0;
  int pending_adds = 0;

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    if (s == nullptr) {
      // The submission queue is full: hand it to the kernel and take a slot.
      io_uring_submit(&ring);
      s = io_uring_get_sqe(&ring);
    }
    RC_ASSERT(s != nullptr);
    return s;
  }
};

bool Completion::more() const {
  return (flags & IORING_CQE_F_MORE) != 0;
}
bool Completion::has_buffer() const {
  return (flags & IORING_CQE_F_BUFFER) != 0;
}
std::uint16_t Completion::buffer_id() const {
  return static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
}

Ring::Ring() : impl_(std::make_unique<Impl>()) {}

Ring::~Ring() {
  if (impl_->br != nullptr) {
    io_uring_unregister_buf_ring(&impl_->ring, impl_->group);
    munmap(impl_->br, impl_->br_bytes);
  }
  if (impl_->bufs != nullptr) munmap(impl_->bufs, impl_->bufs_bytes);
  if (impl_->initialized) io_uring_queue_exit(&impl_->ring);
}

static Status probe_ops(io_uring* ring) {
  io_uring_probe* probe = io_uring_get_probe_ring(ring);
  if (probe == nullptr)
    return Status::error("io_uring probe failed (kernel 6.1 or newer is needed)");
  struct Need {
    int op;
    const char* name;
  };
  const Need needs[] = {{IORING_OP_ACCEPT, "ACCEPT"},
                        {IORING_OP_RECV, "RECV"},
                        {IORING_OP_SENDMSG, "SENDMSG"},
                        {IORING_OP_READ, "READ"},
                        {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
                        {IORING_OP_PROVIDE_BUFFERS, "PROVIDE_BUFFERS"},
                        {IORING_OP_MSG_RING, "MSG_RING"},
                        {IORING_OP_FILES_UPDATE, "FILES_UPDATE"}};
  std::string missing;
  for (const Need& n : needs) {
    if (!io_uring_opcode_supported(probe, n.op)) missing += fmt::format(" {}", n.name);
  }
  io_uring_free_probe(probe);
  if (!missing.empty()) {
    return Status::error(
        fmt::format("this kernel's io_uring lacks:{} (kernel 6.1 or newer is needed)", missing));
  }
  return Status::ok();
}

Result<std::unique_ptr<Ring>> Ring::create(std::uint32_t entries) {
  std::unique_ptr<Ring> r(new Ring());
  io_uring_params p{};
  // One thread submits (SINGLE_ISSUER) and completions are processed only when
  // that thread asks for them (DEFER_TASKRUN): no task-work interrupts while
  // the loop is busy, fewer context switches. CQSIZE doubles the completion
  // queue so multishot bursts do not overflow it.
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
  p.cq_entries = entries * 2;
  int rc = io_uring_queue_init_params(entries, &r->impl_->ring, &p);
  if (rc == -EINVAL) {
    // Older kernels lack DEFER_TASKRUN; COOP_TASKRUN is the next best thing.
    p = io_uring_params{};
    p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 2;
    rc = io_uring_queue_init_params(entries, &r->impl_->ring, &p);
  }
  if (rc < 0) {
    if (rc == -EPERM || rc == -ENOSYS) {
      return Status::error(fmt::format(
          "io_uring is not available ({}); check /proc/sys/kernel/io_uring_disabled and seccomp",
          std::strerror(-rc)));
    }
    return Status::error(fmt::format("io_uring_queue_init failed: {}", std::strerror(-rc)));
  }
  r->impl_->initialized = true;
  if (!(p.features & IORING_FEAT_EXT_ARG)) {
    return Status::error(
        "this kernel's io_uring lacks EXT_ARG waits (kernel 5.11 or newer is needed)");
  }
  if (!(p.features & IORING_FEAT_NODROP)) {
    return Status::error(
        "this kernel's io_uring may drop completions (kernel 5.5 or newer is needed)");
  }
  Status s = probe_ops(&r->impl_->ring);
  if (!s) return s;
  return r;
}

int Ring::fd() const {
  return impl_->ring.ring_fd;
}

void Ring::accept_multishot(int listen_fd, std::uint64_t user_data) {
  io_uring_sqe* s = impl_->sqe();
  io_uring_prep_multishot_accept(s, listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(s, user_data);
}

namespace {

io_uring_sqe* on_socket(io_uring_sqe* s, Socket sock) {
  if (sock.fixed) s->flags |= IOSQE_FIXED_FILE;
  return s;
}

}  // namespace

void Ring::recv_multishot(Socket sock, std::uint16_t buffer_group, std::uint64_t user_data) {
  io_uring_sqe* s = impl_->sqe();
  io_uring_prep_recv_multishot(s, sock.value, nullptr, 0, 0);
  on_socket(s, sock)->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = buffer_group;
  io_uring_sqe_set_data64(s, user_data);
}

void Ring::recv_once(Socket sock, std::uint16_t buffer_group, std::uint64_t user_data) {
  io_uring_sqe* s = impl_->sqe();
  io_uring_prep_recv(s, sock.value, nullptr, 0, 0);
  on_socket(s, sock)->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = buffer_group;
  io_uring_sqe_set_data64(s, user_data);
}

void Ring::sendmsg(Socket sock, const msghdr* msg, std::uint64_t user_data) {
  io_uring_sqe* s = impl_->sqe();
  io_uring_prep_sendmsg(s, sock.value, msg, MSG_NOSIGNAL);
  on_socket(s, sock);
  io_uring_sqe_set_data64(s, user_data);
}

void Ring::send(Socket sock, const void* data, std::size_t bytes, std::uint64_t user_data) {
  io_uring_sqe* s = impl_->sqe();
  io_uring_prep_send(s, sock.value, data, bytes, MSG_NOSIGNAL);
  on_socket(s, sock);
  io_uring_sqe_set_data64(s, user_data);
}

void Ring::read(int fd, void* buf, std::uint32_t bytes, std::uint64_t user_data) {
  io_uring_sqe* s = impl_->sqe();
  io_uring_prep_read(s, fd, buf, bytes, 0);
  io_uring_sqe_set_data64(s, user_data);
}

void Ring::cancel(std::uint64_t target_user_data, std::uint64_t user_data) {
  io_uring_sqe* s = impl_->sqe();
  io_uring_prep_cancel64(s, target_user_data, 0);
  io_uring_sqe_set_data64(s, user_data);
}

void Ring::msg_ring(int target_ring_fd, std::int32_t res, std::uint64_t user_data) {
  io_uring_sqe* s = impl_->sqe();
  io_uring_prep_msg_ring(s, target_ring_fd, static_cast<unsigned>(res), user_data, 0);
  // The sender needs no completion of its own for a wake-up.
  s->flags |= IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(s, 0);
}

int Ring::submit_and_wait(std::chrono::nanoseconds timeout) {
  if (impl_->pending_adds > 0) publish_buffers();
  __kernel_timespec ts{};
  ts.tv_sec = timeout.count() / 1000000000;
  ts.tv_nsec = timeout.count() % 1000000000;
  io_uring_cqe* cqe = nullptr;
  ++submit_calls_;
  int rc = io_uring_submit_and_wait_timeout(&impl_->ring, &cqe, 1, &ts, nullptr);
  return rc < 0 ? 0 : rc;
}

int Ring::submit() {
  ++submit_calls_;
  return io_uring_submit(&impl_->ring);
}

std::uint32_t Ring::reap(Completion* out, std::uint32_t max) {
  std::uint32_t n = 0;
  unsigned head;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&impl_->ring, head, cqe) {
    if (n == max) break;
    out[n++] = Completion{cqe->user_data, cqe->res, cqe->flags};
  }
  io_uring_cq_advance(&impl_->ring, n);
  return n;
}

Status Ring::register_files(std::uint32_t count) {
  RC_ASSERT(file_slots_ == 0 && count > 0);
  int rc = io_uring_register_files_sparse(&impl_->ring, count);
  if (rc < 0) {
    return Status::error(
        fmt::format("registering {} files failed: {}", count, std::strerror(-rc)));
  }
  file_slots_ = count;
  return Status::ok();
}

void Ring::update_file(std::uint32_t index, const int* fd, std::uint64_t user_data) {
  RC_ASSERT(index < file_slots_);
  io_uring_sqe* s = impl_->sqe();
  // The kernel only reads the fd array; liburing's signature lacks the const.
  io_uring_prep_files_update(s, const_cast<int*>(fd), 1, static_cast<int>(index));
  s->flags |= IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(s, user_data);
}

void Ring::clear_file(std::uint32_t index, std::uint64_t user_data) {
  static constexpr int kNoFile = -1;
  update_file(index, &kNoFile, user_data);
}

Status Ring::register_buffers(std::uint16_t group, std::uint32_t count, std::uint32_t bytes,
                              std::uint32_t padding) {
  RC_ASSERT(impl_->br == nullptr);
  RC_ASSERT(count > 0 && (count & (count - 1)) == 0 && count <= 32768);
  Impl& m = *impl_;
  m.br_bytes = count * sizeof(io_uring_buf);
  void* ring_mem =
      mmap(nullptr, m.br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (ring_mem == MAP_FAILED) return Status::error("mmap of the buffer ring failed");
  m.br = static_cast<io_uring_buf_ring*>(ring_mem);
  // The kernel takes buffers in ring order, so every one of them is touched
  // within the first `count` receives anyway: fault the pool in now rather
  // than in the kernel's receive path under the first burst of traffic.
  m.buf_stride = bytes + padding;
  m.bufs_bytes = static_cast<std::size_t>(count) * m.buf_stride;
  void* mem = mmap(nullptr, m.bufs_bytes, PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) return Status::error("mmap of the receive buffers failed");
  m.bufs = static_cast<std::uint8_t*>(mem);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(m.br);
  reg.ring_entries = count;
  reg.bgid = group;
  int rc = io_uring_register_buf_ring(&m.ring, &reg, 0);
  if (rc < 0) {
    return Status::error(fmt::format(
        "io_uring provided buffer rings are not supported ({}); kernel 5.19 or newer is needed",
        std::strerror(-rc)));
  }
  m.group = group;
  m.buf_count = count;
  buf_bytes_ = bytes;
  io_uring_buf_ring_init(m.br);
  for (std::uint32_t i = 0; i < count; ++i) recycle_buffer(static_cast<std::uint16_t>(i));
  publish_buffers();
  return Status::ok();
}

std::uint8_t* Ring::buffer(std::uint16_t id) const {
  RC_ASSERT(id < impl_->buf_count);
  return impl_->bufs + static_cast<std::size_t>(id) * impl_->buf_stride;
}

void Ring::recycle_buffer(std::uint16_t id) {
  Impl& m = *impl_;
  io_uring_buf_ring_add(m.br, buffer(id), buf_bytes_, id, io_uring_buf_ring_mask(m.buf_count),
                        m.pending_adds);
  ++m.pending_adds;
}

void Ring::publish_buffers() {
  if (impl_->pending_adds == 0) return;
  io_uring_buf_ring_advance(impl_->br, impl_->pending_adds);
  impl_->pending_adds = 0;
}

}  // namespace rc
