#pragma once
// The io_uring wrapper: the only part of rollcall that includes liburing.
//
// One Ring per shard thread. It is created on that thread and used only by it
// (IORING_SETUP_SINGLE_ISSUER), except for msg_ring targets, which other rings
// may post to. Queueing an operation never allocates and never enters the
// kernel unless the submission queue is full; everything queued during one
// loop turn goes in with one io_uring_enter (submit_and_wait), which is how
// sends are batched.
//
// user_data is an opaque 64-bit value chosen by the caller (shard.cc packs the
// operation kind, the connection slot and its generation into it).
//
// Sockets are named by a Socket: a plain fd, or an index into the ring's
// registered file table (register_files), which spares the kernel looking the
// fd up (and taking and dropping a file reference) on every send and receive.

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace rc {

// One completion, copied out of the completion queue.
struct Completion {
  std::uint64_t user_data;
  std::int32_t res;
  std::uint32_t flags;

  // The operation stays armed (multishot accept/recv): more completions follow.
  bool more() const;
  // res bytes were placed in a provided buffer, whose id buffer_id() returns.
  bool has_buffer() const;
  std::uint16_t buffer_id() const;
};

// The socket an operation works on: a plain fd, or a registered file index.
struct Socket {
  int value = -1;
  bool fixed = false;
};

class Ring {
 public:
  // Creates a ring with `entries` submission slots (twice as many completion
  // slots) and probes every operation rollcall uses. Errors name what the
  // kernel lacks so the operator knows why the server cannot start.
  static Result<std::unique_ptr<Ring>> create(std::uint32_t entries);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  int fd() const;

  // ---- operations (queued; submitted by submit_and_wait)
  void accept_multishot(int listen_fd, std::uint64_t user_data);
  // Receives into a buffer of `buffer_group`; multishot keeps it armed until
  // an error, EOF or the group running out of buffers (then re-arm).
  void recv_multishot(Socket sock, std::uint16_t buffer_group, std::uint64_t user_data);
  void recv_once(Socket sock, std::uint16_t buffer_group, std::uint64_t user_data);
  void sendmsg(Socket sock, const msghdr* msg, std::uint64_t user_data);
  // One contiguous range: IORING_OP_SEND skips the msghdr copy of sendmsg.
  void send(Socket sock, const void* data, std::size_t bytes, std::uint64_t user_data);
  void read(int fd, void* buf, std::uint32_t bytes, std::uint64_t user_data);
  void cancel(std::uint64_t target_user_data, std::uint64_t user_data);
  // Posts a completion with (res, user_data) to another ring: a cross-shard wake-up.
  void msg_ring(int target_ring_fd, std::int32_t res, std::uint64_t user_data);

  // Submits everything queued and waits until a completion is ready or the
  // timeout passes. Returns the number of SQEs submitted.
  int submit_and_wait(std::chrono::nanoseconds timeout);
  int submit();
  // Copies up to max ready completions into out and consumes them.
  std::uint32_t reap(Completion* out, std::uint32_t max);

  std::uint64_t submit_calls() const { return submit_calls_; }

  // ---- registered files
  // Creates an empty table of `count` registered files. Fails (and the ring
  // goes on with plain fds) when the kernel or RLIMIT_NOFILE refuses it.
  Status register_files(std::uint32_t count);
  std::uint32_t file_slots() const { return file_slots_; }
  // Queues IORING_OP_FILES_UPDATE putting the fd *fd into table slot `index`
  // (a negative fd empties the slot). The kernel reads *fd when the operation
  // is submitted, so fd must stay valid until then; operations queued before
  // and after run in queue order, so a receive queued after update_file
  // finds the file. A failure completes with user_data; success is silent.
  void update_file(std::uint32_t index, const int* fd, std::uint64_t user_data);
  // update_file with no fd: empties slot `index`, dropping the table's reference.
  void clear_file(std::uint32_t index, std::uint64_t user_data);
  // ---- provided buffers
  // Registers a ring of `count` buffers of `bytes` each (plus `padding` readable
  // bytes after each) under `group`. count must be a power of two.
  Status register_buffers(std::uint16_t group, std::uint32_t count, std::uint32_t bytes,
                          std::uint32_t padding);
  std::uint8_t* buffer(std::uint16_t id) const;
  std::uint32_t buffer_bytes() const { return buf_bytes_; }
  // Gives a buffer back to the kernel; visible after the next publish_buffers.
  void recycle_buffer(std::uint16_t id);
  void publish_buffers();

 private:
  Ring();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint64_t submit_calls_ = 0;
  std::uint32_t buf_bytes_ = 0;
  std::uint32_t file_slots_ = 0;
};

}  // namespace rc
