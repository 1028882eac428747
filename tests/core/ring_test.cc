// The io_uring wrapper against the real kernel: sends and receives on plain
// and registered sockets, and the queue-order contract of update_file that
// core/shard*.cc relies on (install before the first receive, empty the slot
// when a connection is released, the fd read when submitted).

#include "core/ring.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace rc {
namespace {

using std::chrono::milliseconds;

constexpr std::uint16_t kGroup = 0;

struct Pair {
  int a = -1;
  int b = -1;
  Pair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    a = fds[0];
    b = fds[1];
  }
  ~Pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
  void close_a() {
    ::close(a);
    a = -1;
  }
};

// Whether fd's peer has closed: a read returns 0 (EOF) rather than EAGAIN.
bool at_eof(int fd) {
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

std::unique_ptr<Ring> make_ring() {
  auto r = Ring::create(64);
  EXPECT_TRUE(r) << r.status().message();
  return r ? std::move(*r) : nullptr;
}

// Submits and collects completions until one with `user_data` arrives.
Completion wait_for(Ring& ring, std::uint64_t user_data) {
  for (int turn = 0; turn < 100; ++turn) {
    ring.submit_and_wait(milliseconds(20));
    Completion batch[16];
    std::uint32_t n;
    while ((n = ring.reap(batch, 16)) > 0) {
      for (std::uint32_t i = 0; i < n; ++i) {
        if (batch[i].user_data == user_data) return batch[i];
      }
    }
  }
  ADD_FAILURE() << "no completion for user_data " << user_data;
  return Completion{user_data, -ETIMEDOUT, 0};
}

std::string read_some(int fd) {
  char buf[256];
  ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// A ring with a table of kSlots registered files.
class RingWithFiles : public ::testing::Test {
 protected:
  static constexpr std::uint32_t kSlots = 8;
  void SetUp() override {
    ring_ = make_ring();
    ASSERT_NE(ring_, nullptr);
    ASSERT_TRUE(ring_->register_files(kSlots));
  }
  std::unique_ptr<Ring> ring_;
};

TEST(Ring, SendsOnAPlainFd) {
  auto ring = make_ring();
  ASSERT_NE(ring, nullptr);
  Pair p;
  ring->send(Socket{p.a, false}, "plain", 5, 1);
  EXPECT_EQ(wait_for(*ring, 1).res, 5);
  EXPECT_EQ(read_some(p.b), "plain");
}

TEST_F(RingWithFiles, SendsAndReceivesOnARegisteredFile) {
  EXPECT_EQ(ring_->file_slots(), kSlots);
  ASSERT_TRUE(ring_->register_buffers(kGroup, 4, 1024, 0));
  Pair p;
  // Installed and used in the same submission: queue order is issue order.
  ring_->update_file(3, &p.a, 99);
  ring_->send(Socket{3, true}, "fixed", 5, 1);
  ring_->recv_once(Socket{3, true}, kGroup, 2);
  EXPECT_EQ(wait_for(*ring_, 1).res, 5);
  EXPECT_EQ(read_some(p.b), "fixed");
  ASSERT_EQ(::send(p.b, "back", 4, 0), 4);
  Completion c = wait_for(*ring_, 2);
  ASSERT_EQ(c.res, 4);
  ASSERT_TRUE(c.has_buffer());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(ring_->buffer(c.buffer_id())), 4), "back");
}

TEST_F(RingWithFiles, AnEmptiedSlotFailsAndTheSocketClosesWithItsFd) {
  Pair p;
  ring_->update_file(0, &p.a, 99);
  ring_->send(Socket{0, true}, "x", 1, 1);
  EXPECT_EQ(wait_for(*ring_, 1).res, 1);
  ring_->clear_file(0, 99);
  ring_->send(Socket{0, true}, "y", 1, 2);
  EXPECT_EQ(wait_for(*ring_, 2).res, -EBADF);
  // With the table's reference gone, closing the fd closes the socket.
  p.close_a();
  EXPECT_EQ(read_some(p.b), "x");
  EXPECT_TRUE(at_eof(p.b));
}

TEST_F(RingWithFiles, TheTableKeepsTheSocketOpenUntilTheSlotIsEmptied) {
  Pair p;
  ring_->update_file(1, &p.a, 99);
  ring_->submit();
  p.close_a();
  EXPECT_FALSE(at_eof(p.b)) << "still open: the registered file holds it";
  ring_->send(Socket{1, true}, "z", 1, 1);
  EXPECT_EQ(wait_for(*ring_, 1).res, 1);
  ring_->clear_file(1, 99);
  ring_->submit();
  EXPECT_EQ(read_some(p.b), "z");
  EXPECT_TRUE(at_eof(p.b)) << "closed once the slot is emptied";
}

TEST_F(RingWithFiles, UpdateFileReadsTheFdWhenSubmitted) {
  Pair first;
  Pair second;
  int fd = first.a;
  ring_->update_file(2, &fd, 99);
  fd = second.a;  // changed before the submission: the slot gets this one
  ring_->send(Socket{2, true}, "late", 4, 1);
  EXPECT_EQ(wait_for(*ring_, 1).res, 4);
  EXPECT_EQ(read_some(second.b), "late");
  EXPECT_EQ(read_some(first.b), "");
}

TEST_F(RingWithFiles, AFailedUpdateCompletesWithItsUserData) {
  int not_open = 1 << 20;  // far past any fd this process has
  ring_->update_file(0, &not_open, 77);
  Completion c = wait_for(*ring_, 77);
  EXPECT_EQ(c.res, -EBADF);
}

TEST(Ring, RegisteringMoreFilesThanTheLimitFails) {
  auto ring = make_ring();
  ASSERT_NE(ring, nullptr);
  Status s = ring->register_files(1u << 30);
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("registering"), std::string::npos) << s.message();
  EXPECT_EQ(ring->file_slots(), 0u);
}

}  // namespace
}  // namespace rc
