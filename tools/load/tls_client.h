#pragma once
// The client side of TLS for the load tools (rollcall-load --tls): mbedTLS
// 2.28 over the tools' own non-blocking sockets. The only tools file that
// includes mbedTLS.
//
// - TlsClientConfig: one per thread. TLS 1.2 only (what the server speaks,
//   docs/TLS.md), no certificate verification (a load tool over loopback;
//   the certificate is still parsed, so its key type can be reported), a
//   browser-like offer: ECDHE-ECDSA/RSA with AES-GCM or ChaCha20, X25519
//   first, then P-256 and P-384. Holds the thread's random generator.
// - TlsConn: one per connection, driving mbedTLS over a connected
//   non-blocking socket (mbedtls_ssl_set_bio with send/recv). Every call
//   returns at once: kWantRead / kWantWrite say which readiness to wait for
//   (epoll), as MBEDTLS_ERR_SSL_WANT_READ / WANT_WRITE do. Not movable (mbedTLS
//   keeps pointers into it); hold it by unique_ptr. About 37 KiB of heap
//   (mbedTLS's two 16 KiB record buffers) from construction to destruction.
//
// Threading: a TlsConn is used by the thread that owns its config.

#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/crypto.h"
#include "tools/load/histogram.h"
#include "tools/load/net.h"

namespace rc::load {

// Plaintext bytes of one TLS record (RFC 5246 6.2.1): the most one write
// encrypts, and the least room a read must offer to take a whole record.
inline constexpr std::size_t kTlsRecordPlainBytes = 16384;

class TlsClientConfig {
 public:
  TlsClientConfig() {
    mbedtls_ssl_config_init(&conf_);
    // With constant arguments this only fails on allocation failure.
    ok_ = mbedtls_ssl_config_defaults(&conf_, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                      MBEDTLS_SSL_PRESET_DEFAULT) == 0;
    mbedtls_ssl_conf_authmode(&conf_, MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_rng(&conf_, &TlsClientConfig::random, &random_);
    mbedtls_ssl_conf_min_version(&conf_, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(&conf_, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(&conf_, kSuites);
    mbedtls_ssl_conf_curves(&conf_, kCurves);
    mbedtls_ssl_conf_renegotiation(&conf_, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    ok_ = ok_ && mbedtls_ssl_conf_alpn_protocols(&conf_, alpn_) == 0;
  }
  ~TlsClientConfig() { mbedtls_ssl_config_free(&conf_); }
  TlsClientConfig(const TlsClientConfig&) = delete;
  TlsClientConfig& operator=(const TlsClientConfig&) = delete;

  bool ok() const { return ok_; }
  const mbedtls_ssl_config* get() const { return &conf_; }

 private:
  static int random(void* rng, unsigned char* out, std::size_t n) {
    static_cast<crypto::Random*>(rng)->fill(out, n);
    return 0;
  }

  // The order a browser offers them in; the server picks by its own order.
  static constexpr int kSuites[] = {
      MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
      MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
      MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
      MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
      MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
      MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
      0,
  };
  // mbedTLS 2.28 servers take the first curve of the client's list that they
  // support: X25519 first, as browsers send it.
  static constexpr mbedtls_ecp_group_id kCurves[] = {
      MBEDTLS_ECP_DP_CURVE25519,
      MBEDTLS_ECP_DP_SECP256R1,
      MBEDTLS_ECP_DP_SECP384R1,
      MBEDTLS_ECP_DP_NONE,
  };

  const char* alpn_[2] = {"http/1.1", nullptr};  // mbedTLS keeps the pointer
  crypto::Random random_;
  mbedtls_ssl_config conf_;
  bool ok_ = false;
};

class TlsConn {
 public:
  enum class Io : std::uint8_t { kOk, kWantRead, kWantWrite, kClosed, kError };

  // fd: a connected non-blocking TCP socket, which the caller keeps owning
  // (and closes after destroying this object).
  TlsConn(const TlsClientConfig& config, int fd) : fd_(fd) {
    mbedtls_ssl_init(&ssl_);
    if (mbedtls_ssl_setup(&ssl_, config.get()) != 0) {
      failed_ = true;
      return;
    }
    mbedtls_ssl_set_bio(&ssl_, &fd_, &TlsConn::bio_send, &TlsConn::bio_recv, nullptr);
  }
  ~TlsConn() { mbedtls_ssl_free(&ssl_); }
  TlsConn(const TlsConn&) = delete;
  TlsConn& operator=(const TlsConn&) = delete;

  // Drives the handshake: kOk once done, kWantRead/kWantWrite while it needs
  // the socket, kError when it failed (error() says why).
  Io handshake() {
    if (failed_) return Io::kError;
    return status(mbedtls_ssl_handshake(&ssl_));
  }
  bool handshake_done() const { return ssl_.state == MBEDTLS_SSL_HANDSHAKE_OVER; }

  // Encrypts and sends up to kTlsRecordPlainBytes of data[0..len): kOk with
  // `done` > 0 bytes taken. After kWantWrite/kWantRead the next call must
  // start at the same byte (mbedTLS already holds that record and finishes
  // sending it first); len may have grown meanwhile.
  Io write(const std::uint8_t* data, std::size_t len, std::size_t& done) {
    done = 0;
    if (failed_) return Io::kError;
    const std::size_t n =
        pending_write_ != 0 ? pending_write_ : std::min(len, kTlsRecordPlainBytes);
    const int r = mbedtls_ssl_write(&ssl_, data, n);
    if (r > 0) {
      pending_write_ = 0;
      done = static_cast<std::size_t>(r);
      return Io::kOk;
    }
    const Io io = status(r);
    if (io == Io::kWantRead || io == Io::kWantWrite) pending_write_ = n;
    return io;
  }

  // Decrypts into out[0..cap): kOk with got > 0; kWantRead when nothing is
  // there yet; kClosed when the server sent close_notify or closed the
  // socket; kError on a bad record. With cap >= kTlsRecordPlainBytes each
  // call takes a whole record, so nothing is left inside mbedTLS that epoll
  // would not announce.
  Io read(std::uint8_t* out, std::size_t cap, std::size_t& got) {
    got = 0;
    if (failed_) return Io::kError;
    const int r = mbedtls_ssl_read(&ssl_, out, cap);
    if (r > 0) {
      got = static_cast<std::size_t>(r);
      return Io::kOk;
    }
    if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == MBEDTLS_ERR_SSL_CONN_EOF) {
      return Io::kClosed;
    }
    return status(r);
  }
  // Plaintext already decrypted and not yet read.
  std::size_t buffered() const { return mbedtls_ssl_get_bytes_avail(&ssl_); }

  // Best effort: one attempt to send a close_notify alert.
  void close_notify() {
    if (!failed_ && handshake_done()) mbedtls_ssl_close_notify(&ssl_);
  }

  // The negotiated suite, e.g. "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256".
  std::string ciphersuite() const {
    const char* s = mbedtls_ssl_get_ciphersuite(&ssl_);
    return s != nullptr ? s : "";
  }
  // The server certificate's key, e.g. "EC secp256r1" or "RSA 2048".
  std::string peer_key() const {
    const mbedtls_x509_crt* cert = mbedtls_ssl_get_peer_cert(&ssl_);
    if (cert == nullptr) return "";
    const mbedtls_pk_context& pk = cert->pk;
    std::string out = mbedtls_pk_get_name(&pk);
    if (mbedtls_pk_get_type(&pk) == MBEDTLS_PK_ECKEY ||
        mbedtls_pk_get_type(&pk) == MBEDTLS_PK_ECDSA) {
      const mbedtls_ecp_curve_info* c =
          mbedtls_ecp_curve_info_from_grp_id(mbedtls_pk_ec(pk)->grp.id);
      if (c != nullptr) out.append(" ").append(c->name);
    } else {
      out.append(" ").append(std::to_string(mbedtls_pk_get_bitlen(&pk)));
    }
    return out;
  }
  std::string error() const {
    if (last_error_ == 0) return failed_ ? "setup failed" : "";
    char buf[160];
    mbedtls_strerror(last_error_, buf, sizeof buf);
    return buf;
  }

 private:
  Io status(int r) {
    if (r == 0) return Io::kOk;
    if (r == MBEDTLS_ERR_SSL_WANT_READ) return Io::kWantRead;
    if (r == MBEDTLS_ERR_SSL_WANT_WRITE) return Io::kWantWrite;
    last_error_ = r;
    failed_ = true;
    return Io::kError;
  }

  static int bio_send(void* ctx, const unsigned char* buf, std::size_t len) {
    const ssize_t n = ::send(*static_cast<int*>(ctx), buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
      return MBEDTLS_ERR_SSL_WANT_WRITE;
    return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
                                                 : MBEDTLS_ERR_NET_SEND_FAILED;
  }
  static int bio_recv(void* ctx, unsigned char* buf, std::size_t len) {
    const ssize_t n = ::recv(*static_cast<int*>(ctx), buf, len, MSG_DONTWAIT);
    if (n >= 0) return static_cast<int>(n);  // 0: EOF, which mbedTLS reports as CONN_EOF
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return MBEDTLS_ERR_SSL_WANT_READ;
    return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
  }

  int fd_;
  mbedtls_ssl_context ssl_;
  std::size_t pending_write_ = 0;  // the length of a write that must be repeated
  bool failed_ = false;
  int last_error_ = 0;
};

// What flush_bytes left: all written, a full socket (wait for EPOLLOUT), or an error.
enum class Flush : std::uint8_t { kDone, kBlocked, kFailed };

// Writes data[off..size) to the non-blocking socket fd, through tls when it is
// not null, until all of it is out or the socket is full; off counts what went.
inline Flush flush_bytes(int fd, TlsConn* tls, const std::uint8_t* data, std::size_t size,
                         std::size_t& off) {
  while (off < size) {
    if (tls != nullptr) {
      std::size_t done = 0;
      const TlsConn::Io io = tls->write(data + off, size - off, done);
      off += done;
      if (io == TlsConn::Io::kOk) continue;
      if (io == TlsConn::Io::kWantWrite || io == TlsConn::Io::kWantRead) return Flush::kBlocked;
      return Flush::kFailed;
    }
    const ssize_t n = ::send(fd, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return Flush::kBlocked;
    } else if (n == 0 || errno != EINTR) {
      return Flush::kFailed;
    }
  }
  return Flush::kDone;
}

// The TLS handshakes of a set of connections: how many failed, how long the
// others took, and what the first one negotiated. Per worker, merged at the end.
struct TlsTally {
  std::uint64_t errors = 0;  // handshakes that failed
  Histogram handshake_us;    // TCP connected to handshake done
  std::string suite;         // of the first handshake
  std::string peer_key;      // of the first handshake
  std::string first_error;   // the first failure

  // A handshake that completed; its TCP connection was up at start_ns (mono_ns).
  void done(const TlsConn& tls, std::int64_t start_ns) {
    const std::int64_t us = (mono_ns() - start_ns) / 1000;
    handshake_us.add(static_cast<std::uint64_t>(us > 0 ? us : 0));
    if (suite.empty()) {
      suite = tls.ciphersuite();
      peer_key = tls.peer_key();
    }
  }
  void failed(const TlsConn& tls) {
    ++errors;
    if (first_error.empty()) first_error = tls.error();
  }
  void merge(const TlsTally& o) {
    errors += o.errors;
    handshake_us.merge(o.handshake_us);
    if (suite.empty()) suite = o.suite;
    if (peer_key.empty()) peer_key = o.peer_key;
    if (first_error.empty()) first_error = o.first_error;
  }
};

// GET path over TLS from addr:port on a non-blocking socket, every step
// bounded by one deadline (timeout_ms in all); the whole answer, head
// included, or empty on any failure. The TLS twin of http_get (net.h), for
// the main thread's few scrapes per second.
inline std::string tls_http_get(const TlsClientConfig& config, const in_addr& addr,
                                std::uint16_t port, const char* path, int timeout_ms) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  const std::int64_t deadline = mono_ns() + std::int64_t{timeout_ms} * 1000000;
  // Waits for `events` on fd until the deadline; false when it passed.
  const auto wait = [&](short events) {
    const std::int64_t left_ms = (deadline - mono_ns()) / 1000000;
    if (left_ms <= 0) return false;
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, static_cast<int>(left_ms)) > 0;
  };
  std::string answer;
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr = addr;
  const bool connected = connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0 ||
                         (errno == EINPROGRESS && wait(POLLOUT) && [&] {
                           int err = 0;
                           socklen_t len = sizeof err;
                           return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
                         }());
  if (connected) {
    auto conn = std::make_unique<TlsConn>(config, fd);
    const auto drive = [&](TlsConn::Io io) {
      if (io == TlsConn::Io::kWantRead) return wait(POLLIN);
      if (io == TlsConn::Io::kWantWrite) return wait(POLLOUT);
      return false;
    };
    TlsConn::Io io;
    while ((io = conn->handshake()) != TlsConn::Io::kOk) {
      if (!drive(io)) break;
    }
    const std::string req =
        std::string("GET ") + path + " HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n";
    std::size_t off = 0;
    while (io == TlsConn::Io::kOk && off < req.size()) {
      std::size_t done = 0;
      io = conn->write(reinterpret_cast<const std::uint8_t*>(req.data()) + off, req.size() - off,
                       done);
      off += done;
      if (io != TlsConn::Io::kOk && drive(io)) io = TlsConn::Io::kOk;
    }
    constexpr std::size_t kAnswerBytesMax = 4 << 20;
    std::uint8_t buf[kTlsRecordPlainBytes];
    while (io == TlsConn::Io::kOk && answer.size() < kAnswerBytesMax) {
      std::size_t got = 0;
      io = conn->read(buf, sizeof buf, got);
      answer.append(reinterpret_cast<const char*>(buf), got);
      if (io != TlsConn::Io::kOk && drive(io)) io = TlsConn::Io::kOk;
    }
  }
  ::close(fd);
  return answer;
}

}  // namespace rc::load
