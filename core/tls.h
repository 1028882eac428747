#pragma once
// TLS 1.2 for the io_uring transport: a non-blocking engine over in-memory
// buffers. With --tls-cert and --tls-key the listening port speaks TLS
// (https/wss, PROTOCOL section 7). core/tls.cc and core/crypto.cc are the
// only server files that include mbedTLS; its types never appear here.
//
// The engine does no I/O. The shard gives it the ciphertext it received
// (Session::feed), takes the plaintext out (read_plain), gives it plaintext
// to send (write_plain) and sends the ciphertext it asks for
// (pending_output/consumed or take_output). No call ever blocks or waits.
//
// Objects and threads
// - ServerContext: one per process, created at start-up (load). Holds the
//   certificate chain and the validated key. Read-only afterwards, so any
//   thread may create ThreadContexts from it at any time.
// - ThreadContext: one per shard thread, created from the ServerContext and
//   used only by that thread. It owns what mbedTLS mutates while serving:
//   the random generator (a CTR_DRBG must not be shared without a lock) and
//   a private copy of the key (mbedTLS caches ECDSA precomputation inside the
//   key, so a key shared by two signing threads is a data race).
// - Session: one per connection, used only by the thread of its
//   ThreadContext, which must outlive it (or until rebind() gives it another
//   one, for a connection handed to another shard). Movable, not copyable.
//
// Protocol choices (docs/TLS.md explains them)
// - TLS 1.2 only: Debian's mbedTLS 2.28 is built without
//   MBEDTLS_SSL_PROTO_TLS1_3_EXPERIMENTAL. Older versions are refused.
// - ECDHE with AES-GCM or ChaCha20-Poly1305 only, server preference order;
//   ECDSA (P-256/P-384) or RSA (>= 2048-bit) certificates.
// - No session resumption (no tickets, no cache), no renegotiation, no
//   client certificates. ALPN offers "http/1.1".
//
// Memory. A Session allocates nothing until its first feed(): a connection
// that never sends a byte costs sizeof(Session), 16 bytes. From the first byte until
// close or failure mbedTLS holds its context plus one 16.3 KiB input and one
// 16.3 KiB output record buffer: about 37 KiB per established session (see
// docs/TLS.md for the measurement). Debian's build fixes those buffers at
// compile time (no MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH), so they cannot be
// shrunk at run time. The mbedTLS state is freed as soon as the session is
// closed or fails; what is left is the pending output and the error text.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/limits.h"
#include "core/status.h"

namespace rc::tls {

// ---- limits
// Largest certificate or key file load() reads.
inline constexpr std::size_t pem_file_bytes_max = 1 << 20;
// TLS plaintext record size (RFC 5246 6.2.1) and the ciphertext bytes one
// record adds with the AEAD suites allowed here (header 5, explicit nonce 8
// for GCM, tag 16).
inline constexpr std::size_t record_plain_bytes_max = 16384;
inline constexpr std::size_t record_expansion_bytes_max = 5 + 8 + 16;
// Received ciphertext not yet decrypted. feed() fails beyond it: the caller
// is expected to call read_plain() until kWantMore after every feed().
inline constexpr std::size_t input_backlog_bytes_max = 64 * 1024;
// Ciphertext waiting to be sent. write_plain() refuses a write that would go
// beyond it (kWantMore); one largest message always fits an empty queue.
inline constexpr std::size_t pending_output_bytes_max = 2 * 1024 * 1024;
// Drained input/output buffers keep their capacity up to this many bytes (no
// allocation per small frame); bigger ones are freed to keep idle sessions small.
inline constexpr std::size_t retained_buffer_bytes_max = 4096;

static_assert(input_backlog_bytes_max >=
                  limits::recv_buffer_bytes + record_plain_bytes_max + record_expansion_bytes_max,
              "a whole record plus one receive buffer fits the backlog");
// Ciphertext bytes of `plain` application bytes sent in full-size records.
constexpr std::size_t ciphertext_bytes_max(std::size_t plain) {
  return plain +
         (plain + record_plain_bytes_max - 1) / record_plain_bytes_max * record_expansion_bytes_max;
}
static_assert(pending_output_bytes_max >= ciphertext_bytes_max(limits::message_bytes_max +
                                                               limits::ws_frame_header_bytes_max),
              "the largest WebSocket frame, encrypted, fits the output queue");

class ServerContext {
 public:
  // Reads a PEM certificate chain (leaf first) and a PEM private key.
  // Errors, each naming the file: unreadable or larger than
  // pem_file_bytes_max; no parsable certificate; no parsable key; an
  // encrypted key; a key type other than EC P-256/P-384 or RSA >= 2048 bits;
  // a key that does not match the leaf certificate.
  static Result<std::unique_ptr<ServerContext>> load(const std::string& cert_pem_path,
                                                     const std::string& key_pem_path);
  // The same from PEM text; `cert_name`/`key_name` stand for the file names
  // in error messages.
  static Result<std::unique_ptr<ServerContext>> from_pem(std::string_view cert_pem,
                                                         std::string_view key_pem,
                                                         std::string_view cert_name = "certificate",
                                                         std::string_view key_name = "key");
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;
  friend class ThreadContext;

  // One line for the start-up log: subject, key type, expiry (and "EXPIRED"
  // when the leaf's notAfter has passed; serving goes on, clients decide).
  std::string summary() const;

  struct Impl;

 private:
  explicit ServerContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class ThreadContext {
 public:
  // Seeds this thread's generator (aborts if the system has no entropy, as
  // crypto::Random does) and parses the private copy of the key. Cannot fail
  // otherwise: the key was validated by ServerContext. `server` must outlive
  // this object.
  explicit ThreadContext(const ServerContext& server);
  ~ThreadContext();
  ThreadContext(const ThreadContext&) = delete;
  ThreadContext& operator=(const ThreadContext&) = delete;
  friend class Session;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// True when the first bytes of a connection can be the start of a TLS
// ClientHello record: content type 22, major version 3, minor 0..4, a
// plausible record length, handshake type 1. Only the bytes present are
// checked (so one byte, 0x16, is enough to say "maybe"); false when empty.
// Plain HTTP ("GET ...") is false from its first byte, which lets the shard
// answer a plaintext client on a TLS port with a clear close instead of garbage.
bool looks_like_client_hello(std::span<const std::uint8_t> first);

class Session {
 public:
  // kOk: progress was made. kWantMore: nothing to return until the peer
  // sends more (or, for write_plain, until output drains). kClosed: the
  // session ended cleanly (close_notify either way). kError: it failed;
  // error() says why. kClosed and kError are final: every later call returns
  // the same value, and the caller sends what pending_output() still holds
  // (a close_notify or a fatal alert), then closes the socket.
  enum class Result : std::uint8_t { kOk, kWantMore, kClosed, kError };

  explicit Session(ThreadContext& thread);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Takes ciphertext received from the peer (copies it) and drives the
  // handshake while it is not done. Handshake replies appear in
  // pending_output(). Returns kWantMore while the handshake needs more bytes,
  // kOk once it is done (this call or earlier; plaintext may then be waiting,
  // see read_plain). kError when the bytes are not TLS (plain HTTP on the TLS
  // port), the handshake fails (garbage, TLS < 1.2, no shared suite), or the
  // undecrypted backlog would exceed input_backlog_bytes_max.
  Result feed(const std::uint8_t* data, std::size_t len);

  // Decrypts into out[0..cap) and sets `got` to the bytes written. kOk when
  // got > 0 (call again: more may follow), kWantMore when nothing is
  // available (also while the handshake is running), kClosed when the peer
  // sent close_notify (a close_notify reply is queued), kError on a bad
  // record. Plaintext read before a close or failure is returned with kOk
  // first. cap must be > 0.
  Result read_plain(std::uint8_t* out, std::size_t cap, std::size_t& got);
  // The same, appending at most `max` bytes to `out`.
  Result read_plain(std::string& out, std::size_t max);

  // Encrypts all `len` bytes into pending output (records of at most
  // record_plain_bytes_max; gather the frames of one loop turn into one call
  // to pay the 29-byte record overhead once). All or nothing: kWantMore,
  // with nothing written, when the output would exceed
  // pending_output_bytes_max. Programmer errors (asserted): calling it
  // before handshake_done(), or one write too big for an empty queue.
  Result write_plain(const std::uint8_t* data, std::size_t len);

  // Ciphertext to send now: handshake records, encrypted data, alerts. The
  // span is valid until the next non-const call on this Session.
  std::span<const std::uint8_t> pending_output() const;
  // Marks the first n bytes of pending_output() as sent. n <= its size.
  void consumed(std::size_t n);
  // Moves all pending ciphertext to the caller, who then owns it for an
  // asynchronous send. If `into` is empty the buffers are swapped (no copy;
  // `into`'s old capacity is reused for later output), else the bytes are
  // appended. Returns the number of bytes moved.
  std::size_t take_output(std::vector<std::uint8_t>& into);

  // Moves the session to another thread's context: a connection handed to
  // another shard continues there. Only before the first byte or after the
  // handshake (asserted): the handshake state points at the old context's
  // key. The old thread must be done with it (the handoff mailbox orders the
  // two), and from now on only `thread`'s thread may call it. Both contexts
  // must come from the same ServerContext.
  void rebind(ThreadContext& thread);

  bool handshake_done() const;
  // Queues a close_notify alert and ends the session (kClosed from now on).
  // Harmless before the handshake or after the end.
  void close_notify();

  // Why the session failed, for logs: the mbedTLS error text and code, or
  // rollcall's reason. Empty while nothing failed.
  std::string error() const;
  // Negotiated suite ("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"), or empty
  // while the handshake is not done. Still answers after the session ended.
  std::string_view ciphersuite() const;

  struct Impl;

 private:
  ThreadContext* thread_;
  std::unique_ptr<Impl> impl_;  // null until the first feed()
};

}  // namespace rc::tls
