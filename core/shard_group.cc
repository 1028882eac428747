// All shards of the process (ShardGroup), the listening socket they share a
// port through, and the clocks.

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>

#include "core/assert.h"
#include "core/shard_impl.h"

namespace rc {

std::int64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::int64_t monotonic_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

std::int64_t wall_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

namespace {

constexpr int kListenBacklog = 4096;

}  // namespace

// A listening socket on bind:port. With reuse_port every shard binds the same
// port and the kernel spreads new connections over them.
Result<int> Shard::Impl::open_listener(const std::string& bind, std::uint16_t port,
                                       bool reuse_port) {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  int family = AF_INET;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, bind.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    addr_len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, bind.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    addr_len = sizeof(sockaddr_in6);
  } else {
    return Status::error(fmt::format("--bind {}: not an IPv4 or IPv6 address", bind));
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::error(fmt::format("socket: {}", std::strerror(errno)));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) < 0 ||
      ::listen(fd, kListenBacklog) < 0) {
    Status st =
        Status::error(fmt::format("cannot listen on {}:{}: {}", bind, port, std::strerror(errno)));
    ::close(fd);
    return st;
  }
  return fd;
}

struct ShardGroup::StartState {
  std::mutex mu;
  std::condition_variable cv;
  std::uint32_t reported = 0;
  Status first_error;
};

ShardGroup::ShardGroup(std::uint32_t count, const ShardOptions& base)
    : stats_(new ShardStats[count]), start_(std::make_unique<StartState>()) {
  RC_ASSERT(count >= 1 && count <= limits::shards_max);
  for (std::uint32_t i = 0; i < count; ++i) {
    ShardOptions o = base;
    o.index = i;
    shards_.push_back(std::make_unique<Shard>(*this, o));
  }
}

ShardGroup::~ShardGroup() {
  join();
}

Status ShardGroup::start(std::function<std::unique_ptr<ShardApp>(Shard&)> make_app) {
  // SO_REUSEPORT would let a second server on the same port silently take a
  // share of the connections: first make sure nobody listens there.
  const ShardOptions& o = shards_[0]->options();
  Result<int> probe = Shard::Impl::open_listener(o.bind, o.port, /*reuse_port=*/false);
  if (!probe)
    return Status::error(probe.status().message() + " (is another server using the port?)");
  ::close(*probe);
  for (auto& s : shards_) {
    Shard* shard = s.get();
    threads_.emplace_back([shard, make_app] { shard->run(make_app); });
  }
  std::unique_lock lock(start_->mu);
  start_->cv.wait(lock, [&] { return start_->reported == shards_.size(); });
  return start_->first_error;
}

void ShardGroup::report_ready(std::uint32_t index, Status status) {
  std::lock_guard lock(start_->mu);
  if (!status && start_->first_error.is_ok()) {
    start_->first_error = Status::error(fmt::format("shard {}: {}", index, status.message()));
  }
  ++start_->reported;
  start_->cv.notify_all();
}

void ShardGroup::begin_shutdown(std::int64_t deadline_ms) {
  deadline_ms_.store(deadline_ms, std::memory_order_release);
  shutting_down_.store(true, std::memory_order_release);
  for (std::uint32_t i = 0; i < size(); ++i) {
    Mail m;
    m.kind = Mail::Kind::kShutdown;
    while (!post(i, std::move(m))) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

bool ShardGroup::post(std::uint32_t target, Mail&& mail) {
  Shard& t = *shards_[target];
  if (!t.deliver_mail(std::move(mail))) return false;
  t.wake_from_outside();
  return true;
}

void ShardGroup::join() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  joined_.store(true, std::memory_order_release);
}

void ShardGroup::drain_mail(const std::function<void(Mail&)>& fn) {
  RC_ASSERT(joined());
  for (auto& shard : shards_) {
    Mail m;
    while (shard->impl_->mailbox.try_pop(m)) fn(m);
  }
}

}  // namespace rc
