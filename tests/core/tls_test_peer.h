#pragma once
// Test-only TLS peer shared by tests/core/tls_test.cc and bench/tls_bench.cc:
// throwaway self-signed certificates made with mbedTLS at run time (no key is
// committed), and an mbedTLS client that talks to rc::tls::Session by moving
// bytes between in-memory buffers. Test code may include mbedTLS; the server
// side under test hides it behind core/tls.h.

#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/tls.h"

namespace rc::tls::test_peer {

// A CTR_DRBG for the test side (certificate generation, the client).
class Drbg {
 public:
  Drbg() {
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
    static const char kPersonal[] = "rollcall tls test peer";
    check(mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_,
                                reinterpret_cast<const unsigned char*>(kPersonal),
                                sizeof kPersonal - 1),
          "ctr_drbg_seed");
  }
  ~Drbg() {
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
  }
  Drbg(const Drbg&) = delete;
  Drbg& operator=(const Drbg&) = delete;

  static int random(void* self, unsigned char* out, std::size_t n) {
    return mbedtls_ctr_drbg_random(&static_cast<Drbg*>(self)->drbg_, out, n);
  }
  static void check(int ret, const char* what) {
    if (ret != 0) throw std::runtime_error(std::string("mbedTLS ") + what + " failed");
  }

 private:
  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
};

enum class KeyKind { kEcP256, kEcP521, kRsa2048, kRsa1024 };

struct CertOptions {
  KeyKind key = KeyKind::kEcP256;
  std::string subject = "CN=localhost";
  std::string not_after = "20991231235959";
  unsigned key_usage = 0;  // 0: no keyUsage extension
};

struct Pem {
  std::string cert, key;
};

inline void generate_key(mbedtls_pk_context& pk, KeyKind kind, Drbg& drbg) {
  const bool rsa = kind == KeyKind::kRsa2048 || kind == KeyKind::kRsa1024;
  Drbg::check(
      mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(rsa ? MBEDTLS_PK_RSA : MBEDTLS_PK_ECKEY)),
      "pk_setup");
  if (rsa) {
    const unsigned bits = kind == KeyKind::kRsa2048 ? 2048 : 1024;
    Drbg::check(mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk), Drbg::random, &drbg, bits, 65537),
                "rsa_gen_key");
  } else {
    const auto curve =
        kind == KeyKind::kEcP256 ? MBEDTLS_ECP_DP_SECP256R1 : MBEDTLS_ECP_DP_SECP521R1;
    Drbg::check(mbedtls_ecp_gen_key(curve, mbedtls_pk_ec(pk), Drbg::random, &drbg), "ecp_gen_key");
  }
}

// A fresh key and a self-signed certificate for it.
inline Pem make_self_signed(const CertOptions& options = {}) {
  Drbg drbg;
  mbedtls_pk_context pk;
  mbedtls_pk_init(&pk);
  mbedtls_x509write_cert w;
  mbedtls_x509write_crt_init(&w);
  mbedtls_mpi serial;
  mbedtls_mpi_init(&serial);
  std::vector<unsigned char> buf(16384);
  Pem pem;
  try {
    generate_key(pk, options.key, drbg);
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, &pk);
    mbedtls_x509write_crt_set_issuer_key(&w, &pk);
    Drbg::check(mbedtls_x509write_crt_set_subject_name(&w, options.subject.c_str()), "subject");
    Drbg::check(mbedtls_x509write_crt_set_issuer_name(&w, options.subject.c_str()), "issuer");
    Drbg::check(mbedtls_mpi_lset(&serial, 1), "serial");
    Drbg::check(mbedtls_x509write_crt_set_serial(&w, &serial), "serial");
    Drbg::check(mbedtls_x509write_crt_set_validity(&w, "20240101000000", options.not_after.c_str()),
                "validity");
    if (options.key_usage != 0)
      Drbg::check(mbedtls_x509write_crt_set_key_usage(&w, options.key_usage), "key_usage");
    Drbg::check(mbedtls_x509write_crt_pem(&w, buf.data(), buf.size(), Drbg::random, &drbg),
                "crt_pem");
    pem.cert = reinterpret_cast<const char*>(buf.data());
    Drbg::check(mbedtls_pk_write_key_pem(&pk, buf.data(), buf.size()), "key_pem");
    pem.key = reinterpret_cast<const char*>(buf.data());
  } catch (...) {
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&w);
    mbedtls_pk_free(&pk);
    throw;
  }
  mbedtls_mpi_free(&serial);
  mbedtls_x509write_crt_free(&w);
  mbedtls_pk_free(&pk);
  return pem;
}

struct ClientOptions {
  std::string hostname = "localhost";
  bool verify = true;  // require the server's certificate to chain to ca_pem
  int min_minor = MBEDTLS_SSL_MINOR_VERSION_3;
  int max_minor = MBEDTLS_SSL_MINOR_VERSION_3;
  const int* suites = nullptr;  // null: mbedTLS's defaults
  bool offer_alpn = true;       // offers "h2", "http/1.1"
};

// An mbedTLS client whose transport is two byte vectors: to_server collects
// what it sends, from_server is what it reads. Not movable (mbedTLS keeps a
// pointer to it).
class Client {
 public:
  explicit Client(const std::string& ca_pem, const ClientOptions& options = {}) {
    mbedtls_ssl_init(&ssl_);
    mbedtls_ssl_config_init(&conf_);
    mbedtls_x509_crt_init(&ca_);
    Drbg::check(mbedtls_x509_crt_parse(&ca_, reinterpret_cast<const unsigned char*>(ca_pem.c_str()),
                                       ca_pem.size() + 1),
                "ca parse");
    Drbg::check(
        mbedtls_ssl_config_defaults(&conf_, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT),
        "config_defaults");
    mbedtls_ssl_conf_rng(&conf_, Drbg::random, &drbg_);
    mbedtls_ssl_conf_authmode(
        &conf_, options.verify ? MBEDTLS_SSL_VERIFY_REQUIRED : MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_ca_chain(&conf_, &ca_, nullptr);
    mbedtls_ssl_conf_min_version(&conf_, MBEDTLS_SSL_MAJOR_VERSION_3, options.min_minor);
    mbedtls_ssl_conf_max_version(&conf_, MBEDTLS_SSL_MAJOR_VERSION_3, options.max_minor);
    if (options.suites != nullptr) mbedtls_ssl_conf_ciphersuites(&conf_, options.suites);
    if (options.offer_alpn) Drbg::check(mbedtls_ssl_conf_alpn_protocols(&conf_, alpn_), "alpn");
    Drbg::check(mbedtls_ssl_setup(&ssl_, &conf_), "ssl_setup");
    Drbg::check(mbedtls_ssl_set_hostname(&ssl_, options.hostname.c_str()), "hostname");
    mbedtls_ssl_set_bio(&ssl_, this, send_cb, recv_cb, nullptr);
  }
  ~Client() {
    mbedtls_ssl_free(&ssl_);
    mbedtls_ssl_config_free(&conf_);
    mbedtls_x509_crt_free(&ca_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Ready for a new handshake with the same configuration (benchmarks).
  void reset() {
    Drbg::check(mbedtls_ssl_session_reset(&ssl_), "session_reset");
    to_server.clear();
    from_server.clear();
    from_read_ = 0;
  }

  // 0 when done, MBEDTLS_ERR_SSL_WANT_READ while waiting, else the error.
  int handshake() { return mbedtls_ssl_handshake(&ssl_); }
  bool done() const { return ssl_.state == MBEDTLS_SSL_HANDSHAKE_OVER; }
  mbedtls_ssl_context& ssl() { return ssl_; }

  // Encrypts everything; 0 or the mbedTLS error.
  int write(const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
      const int ret = mbedtls_ssl_write(
          &ssl_, reinterpret_cast<const unsigned char*>(data.data()) + done, data.size() - done);
      if (ret < 0) return ret;
      done += static_cast<std::size_t>(ret);
    }
    return 0;
  }
  // Appends all the plaintext available now to `out`. Returns
  // MBEDTLS_ERR_SSL_WANT_READ when the input ran out, or what ended reading
  // (MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY, an error).
  int read(std::string& out) {
    unsigned char chunk[4096];
    for (;;) {
      const int ret = mbedtls_ssl_read(&ssl_, chunk, sizeof chunk);
      if (ret <= 0) return ret;
      out.append(reinterpret_cast<const char*>(chunk), static_cast<std::size_t>(ret));
    }
  }
  int close_notify() { return mbedtls_ssl_close_notify(&ssl_); }

  std::vector<std::uint8_t> to_server;
  std::vector<std::uint8_t> from_server;

 private:
  static int send_cb(void* self, const unsigned char* data, std::size_t len) {
    auto& v = static_cast<Client*>(self)->to_server;
    v.insert(v.end(), data, data + len);
    return static_cast<int>(len);
  }
  static int recv_cb(void* self, unsigned char* dst, std::size_t cap) {
    auto& c = *static_cast<Client*>(self);
    const std::size_t avail = c.from_server.size() - c.from_read_;
    if (avail == 0) return MBEDTLS_ERR_SSL_WANT_READ;
    const std::size_t n = std::min(cap, avail);
    std::memcpy(dst, c.from_server.data() + c.from_read_, n);
    c.from_read_ += n;
    if (c.from_read_ == c.from_server.size()) {
      c.from_server.clear();
      c.from_read_ = 0;
    }
    return static_cast<int>(n);
  }

  Drbg drbg_;
  mbedtls_ssl_context ssl_;
  mbedtls_ssl_config conf_;
  mbedtls_x509_crt ca_;
  const char* alpn_[3] = {"h2", "http/1.1", nullptr};
  std::size_t from_read_ = 0;
};

// Feeds the client's pending ciphertext to the session, `chunk` bytes per
// feed() call. Returns the last feed result (kWantMore when there was nothing).
inline Session::Result client_to_server(Client& client, Session& session,
                                        std::size_t chunk = SIZE_MAX) {
  Session::Result last = Session::Result::kWantMore;
  const auto& bytes = client.to_server;
  for (std::size_t at = 0; at < bytes.size();) {
    const std::size_t n = std::min(chunk, bytes.size() - at);
    last = session.feed(bytes.data() + at, n);
    at += n;
    if (last == Session::Result::kError || last == Session::Result::kClosed) break;
  }
  client.to_server.clear();
  return last;
}

// Moves the session's pending ciphertext to the client, consuming it in
// pieces of `chunk` bytes (as partial sends would). Returns the bytes moved.
inline std::size_t server_to_client(Session& session, Client& client,
                                    std::size_t chunk = SIZE_MAX) {
  std::size_t moved = 0;
  for (auto out = session.pending_output(); !out.empty(); out = session.pending_output()) {
    const std::size_t n = std::min(chunk, out.size());
    client.from_server.insert(client.from_server.end(), out.begin(), out.begin() + n);
    session.consumed(n);
    moved += n;
  }
  return moved;
}

// Runs both sides until both handshakes are done (true) or one fails.
inline bool run_handshake(Client& client, Session& session, std::size_t chunk = SIZE_MAX) {
  for (int round = 0; round < 16; ++round) {
    const int ret = client.handshake();
    if (ret != 0 && ret != MBEDTLS_ERR_SSL_WANT_READ) return false;
    if (client.done() && session.handshake_done()) return true;
    if (client_to_server(client, session, chunk) == Session::Result::kError) return false;
    server_to_client(session, client, chunk);
  }
  return false;
}

}  // namespace rc::tls::test_peer
