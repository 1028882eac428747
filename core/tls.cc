#include "core/tls.h"

#include <fmt/format.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/assert.h"
#include "core/crypto.h"

namespace rc::tls {
namespace {

// ---- what the server offers (the arrays must outlive every ssl_config)

// Server preference: ECDSA before RSA (cheaper signatures), AES-128-GCM first
// (AES-NI makes it the fastest here), ChaCha20 for clients without AES
// hardware, which put it first in their own list. Only the suites matching
// the certificate's key type can be chosen.
const int kSuites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

// X25519 is the fastest key exchange and what browsers offer first.
const mbedtls_ecp_group_id kCurves[] = {
    MBEDTLS_ECP_DP_CURVE25519,
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE,
};

// Hashes for the ServerKeyExchange signature; SHA-1 is not among them.
const int kSigHashes[] = {MBEDTLS_MD_SHA256, MBEDTLS_MD_SHA384, MBEDTLS_MD_SHA512, MBEDTLS_MD_NONE};

// The only application protocol spoken on the port; saying so stops clients
// that also offer h2 from guessing.
const char* kAlpn[] = {"http/1.1", nullptr};

constexpr std::size_t kRecordHeaderBytes = 5;

std::string mbed_error_text(int code) {
  char text[160];
  mbedtls_strerror(code, text, sizeof text);
  return fmt::format("{} (-0x{:04x})", text, static_cast<unsigned>(-code));
}

const unsigned char* bytes_of(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.c_str());
}

// Reads a whole file at start-up. The size limit keeps a wrong path such as
// /dev/zero from eating memory.
Result<std::string> read_pem_file(const std::string& path, std::string_view what) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    return Status::error(
        fmt::format("cannot read TLS {} file '{}': {}", what, path, std::strerror(errno)));
  std::string text;
  char chunk[4096];
  std::size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0 && text.size() <= pem_file_bytes_max)
    text.append(chunk, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return Status::error(fmt::format("cannot read TLS {} file '{}'", what, path));
  if (text.size() > pem_file_bytes_max)
    return Status::error(
        fmt::format("TLS {} file '{}' is larger than {} bytes", what, path, pem_file_bytes_max));
  return text;
}

// mbedTLS's signature: the generator of the calling thread's ThreadContext.
int random_bytes(void* random, unsigned char* out, std::size_t n) {
  static_cast<crypto::Random*>(random)->fill(out, n);
  return 0;
}

}  // namespace

// ---- ServerContext

struct ServerContext::Impl {
  mbedtls_x509_crt chain;
  // Kept to give each ThreadContext its own parsed key (see tls.h).
  std::string key_pem;
  std::string key_description;

  Impl() { mbedtls_x509_crt_init(&chain); }
  ~Impl() {
    mbedtls_x509_crt_free(&chain);
    mbedtls_platform_zeroize(key_pem.data(), key_pem.size());
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

namespace {

// Parses the chain; PEM parsing needs the terminating NUL inside the length.
Status parse_chain(mbedtls_x509_crt& chain, const std::string& pem, std::string_view name) {
  const int ret = mbedtls_x509_crt_parse(&chain, bytes_of(pem), pem.size() + 1);
  if (ret < 0)
    return Status::error(
        fmt::format("no usable certificate in '{}': {}", name, mbed_error_text(ret)));
  if (ret > 0)
    return Status::error(fmt::format("{} certificate(s) in '{}' could not be parsed", ret, name));
  if (chain.raw.p == nullptr) return Status::error(fmt::format("no certificate in '{}'", name));
  return Status::ok();
}

Status parse_key(mbedtls_pk_context& key, const std::string& pem, std::string_view name) {
  const int ret = mbedtls_pk_parse_key(&key, bytes_of(pem), pem.size() + 1, nullptr, 0);
  if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
    return Status::error(
        fmt::format("the private key in '{}' is encrypted; give it unencrypted "
                    "(and readable only by the server's user)",
                    name));
  if (ret != 0)
    return Status::error(
        fmt::format("no usable private key in '{}': {}", name, mbed_error_text(ret)));
  return Status::ok();
}

// Accepts the key types every current client can verify a signature from,
// and returns how to describe the key in the start-up log.
Result<std::string> describe_key(const mbedtls_pk_context& key, std::string_view name) {
  const mbedtls_pk_type_t type = mbedtls_pk_get_type(&key);
  if (type == MBEDTLS_PK_RSA) {
    const std::size_t bits = mbedtls_pk_get_bitlen(&key);
    if (bits < 2048)
      return Status::error(
          fmt::format("the RSA key in '{}' has {} bits; at least 2048 are needed", name, bits));
    return fmt::format("RSA {}", bits);
  }
  if (type == MBEDTLS_PK_ECKEY || type == MBEDTLS_PK_ECDSA) {
    const mbedtls_ecp_group_id curve = mbedtls_pk_ec(key)->grp.id;
    if (curve == MBEDTLS_ECP_DP_SECP256R1) return std::string("EC P-256");
    if (curve == MBEDTLS_ECP_DP_SECP384R1) return std::string("EC P-384");
    return Status::error(
        fmt::format("the EC key in '{}' is not on P-256 or P-384, which clients expect", name));
  }
  return Status::error(
      fmt::format("the key in '{}' is neither an EC (P-256/P-384) nor an RSA key", name));
}

// A leaf whose extensions forbid serving TLS would only fail later, inside
// every handshake; say so at start-up instead.
Status check_leaf_usage(const mbedtls_x509_crt& leaf, std::string_view name) {
  if (mbedtls_x509_crt_check_key_usage(&leaf, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0)
    return Status::error(
        fmt::format("the certificate in '{}' does not allow digitalSignature key usage", name));
  if (mbedtls_x509_crt_check_extended_key_usage(&leaf, MBEDTLS_OID_SERVER_AUTH,
                                                MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)) != 0)
    return Status::error(
        fmt::format("the certificate in '{}' is not for serverAuth (extended key usage)", name));
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<ServerContext>> ServerContext::from_pem(std::string_view cert_pem,
                                                               std::string_view key_pem,
                                                               std::string_view cert_name,
                                                               std::string_view key_name) {
  auto impl = std::make_unique<Impl>();
  const std::string cert_text(cert_pem);
  if (Status s = parse_chain(impl->chain, cert_text, cert_name); !s) return s;
  if (Status s = check_leaf_usage(impl->chain, cert_name); !s) return s;

  impl->key_pem.assign(key_pem);
  mbedtls_pk_context key;
  mbedtls_pk_init(&key);
  Status status = parse_key(key, impl->key_pem, key_name);
  if (status) {
    auto described = describe_key(key, key_name);
    if (!described) {
      status = described.status();
    } else if (mbedtls_pk_check_pair(&impl->chain.pk, &key) != 0) {
      status =
          Status::error(fmt::format("the private key in '{}' does not match the "
                                    "certificate in '{}'",
                                    key_name, cert_name));
    } else {
      impl->key_description = std::move(*described);
    }
  }
  mbedtls_pk_free(&key);
  if (!status) return status;
  return std::unique_ptr<ServerContext>(new ServerContext(std::move(impl)));
}

Result<std::unique_ptr<ServerContext>> ServerContext::load(const std::string& cert_pem_path,
                                                           const std::string& key_pem_path) {
  auto cert = read_pem_file(cert_pem_path, "certificate");
  if (!cert) return cert.status();
  auto key = read_pem_file(key_pem_path, "key");
  if (!key) return key.status();
  auto ctx = from_pem(*cert, *key, cert_pem_path, key_pem_path);
  mbedtls_platform_zeroize(key->data(), key->size());
  return ctx;
}

ServerContext::ServerContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ServerContext::~ServerContext() = default;

std::string ServerContext::summary() const {
  const mbedtls_x509_crt& leaf = impl_->chain;
  char subject[256];
  if (mbedtls_x509_dn_gets(subject, sizeof subject, &leaf.subject) < 0) subject[0] = '\0';
  std::size_t chain_length = 0;
  for (const mbedtls_x509_crt* c = &leaf; c != nullptr && c->raw.p != nullptr; c = c->next)
    ++chain_length;
  const mbedtls_x509_time& to = leaf.valid_to;
  return fmt::format("TLS 1.2: {}, {} key, {} certificate(s), valid until {:04}-{:02}-{:02}{}",
                     subject, impl_->key_description, chain_length, to.year, to.mon, to.day,
                     mbedtls_x509_time_is_past(&to) ? " (EXPIRED)" : "");
}

// ---- ThreadContext

struct ThreadContext::Impl {
  crypto::Random random;
  mbedtls_pk_context key;
  mbedtls_ssl_config conf;

  explicit Impl(const ServerContext::Impl& server);
  ~Impl() {
    mbedtls_ssl_config_free(&conf);
    mbedtls_pk_free(&key);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

ThreadContext::Impl::Impl(const ServerContext::Impl& server) {
  mbedtls_pk_init(&key);
  mbedtls_ssl_config_init(&conf);
  // The PEM was parsed and checked by ServerContext: failing now is a bug.
  RC_ASSERT(mbedtls_pk_parse_key(&key, bytes_of(server.key_pem), server.key_pem.size() + 1, nullptr,
                                 0) == 0);
  RC_ASSERT(mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                        MBEDTLS_SSL_PRESET_DEFAULT) == 0);
  mbedtls_ssl_conf_rng(&conf, random_bytes, &random);
  mbedtls_ssl_conf_min_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_max_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_ciphersuites(&conf, kSuites);
  mbedtls_ssl_conf_curves(&conf, kCurves);
  mbedtls_ssl_conf_sig_hashes(&conf, kSigHashes);
  mbedtls_ssl_conf_renegotiation(&conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
  RC_ASSERT(mbedtls_ssl_conf_alpn_protocols(&conf, kAlpn) == 0);
  // mbedTLS takes a mutable chain but only reads it while serving, so one
  // chain serves every thread. No ticket callback and no session cache are
  // set: there is no resumption (docs/TLS.md).
  RC_ASSERT(mbedtls_ssl_conf_own_cert(&conf, const_cast<mbedtls_x509_crt*>(&server.chain), &key) ==
            0);
}

ThreadContext::ThreadContext(const ServerContext& server)
    : impl_(std::make_unique<Impl>(*server.impl_)) {}
ThreadContext::~ThreadContext() = default;

// ---- looks_like_client_hello

bool looks_like_client_hello(std::span<const std::uint8_t> first) {
  constexpr std::uint8_t kHandshake = 22, kClientHello = 1;
  const std::size_t n = first.size();
  if (n == 0 || first[0] != kHandshake) return false;
  if (n > 1 && first[1] != 3) return false;
  if (n > 2 && first[2] > 4) return false;
  if (n > 3 && (std::size_t{first[3]} << 8) > record_plain_bytes_max) return false;
  if (n > 4) {
    const std::size_t length = (std::size_t{first[3]} << 8) | first[4];
    if (length < 4 || length > record_plain_bytes_max) return false;
  }
  return n <= kRecordHeaderBytes || first[kRecordHeaderBytes] == kClientHello;
}

// ---- Session

namespace {

// mbedTLS state of one live session, freed at the end of the session.
struct Ssl {
  mbedtls_ssl_context ctx;
  Ssl() { mbedtls_ssl_init(&ctx); }
  ~Ssl() { mbedtls_ssl_free(&ctx); }
  Ssl(const Ssl&) = delete;
  Ssl& operator=(const Ssl&) = delete;
};

// Empties a drained buffer. A live session keeps a small one (no allocation
// per frame); a big one gives its memory back so that a burst (a 100 KiB
// history page) does not stay attached to an idle connection, and an ended
// session keeps nothing.
void reset_buffer(std::vector<std::uint8_t>& buffer, bool live) {
  buffer.clear();
  if (!live || buffer.capacity() > retained_buffer_bytes_max)
    std::vector<std::uint8_t>().swap(buffer);
}

}  // namespace

// Lives on the heap so the address given to mbedTLS as the I/O context stays
// put when the Session moves.
struct Session::Impl {
  enum class State : std::uint8_t { kHandshake, kOpen, kClosed, kFailed };
  State state = State::kHandshake;
  std::unique_ptr<Ssl> ssl;  // null before start() and after the end
  std::vector<std::uint8_t> in;
  std::size_t in_read = 0;  // in[0..in_read) was handed to mbedTLS
  std::vector<std::uint8_t> out;
  std::size_t out_sent = 0;  // out[0..out_sent) was consumed by the caller
  int mbed_error = 0;
  const char* reason = nullptr;  // rollcall's own failure reason, static text
  const char* suite = nullptr;   // mbedTLS's static name, kept after the end

  bool live() const { return state == State::kHandshake || state == State::kOpen; }
  std::size_t pending_in() const { return in.size() - in_read; }
  std::size_t pending_out() const { return out.size() - out_sent; }

  Result start(mbedtls_ssl_config& conf);
  Result drive_handshake();
  Result fail(int code, const char* why = nullptr);
  void end_cleanly();
  void append_input(const std::uint8_t* data, std::size_t len);
  void append_output(const unsigned char* data, std::size_t len);
  std::size_t take_input(unsigned char* dst, std::size_t cap);
};

namespace {

// The BIO: mbedTLS "sends" by appending to the output queue (which always
// succeeds, bounded by write_plain's check) and "receives" from the bytes
// feed() queued, asking to be called again when they run out.
int bio_send(void* impl, const unsigned char* data, std::size_t len) {
  static_cast<Session::Impl*>(impl)->append_output(data, len);
  return static_cast<int>(len);
}

int bio_recv(void* impl, unsigned char* dst, std::size_t cap) {
  const std::size_t n = static_cast<Session::Impl*>(impl)->take_input(dst, cap);
  return n == 0 ? MBEDTLS_ERR_SSL_WANT_READ : static_cast<int>(n);
}

}  // namespace

void Session::Impl::append_input(const std::uint8_t* data, std::size_t len) {
  if (in_read > 0) {
    in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(in_read));
    in_read = 0;
  }
  in.insert(in.end(), data, data + len);
}

std::size_t Session::Impl::take_input(unsigned char* dst, std::size_t cap) {
  const std::size_t n = std::min(cap, pending_in());
  if (n == 0) return 0;
  std::memcpy(dst, in.data() + in_read, n);
  in_read += n;
  if (in_read == in.size()) {
    reset_buffer(in, live());
    in_read = 0;
  }
  return n;
}

// Sent bytes are dropped from the front once they are half the buffer, so
// that a caller who sends in pieces does not make the queue creep.
void Session::Impl::append_output(const unsigned char* data, std::size_t len) {
  if (out_sent > 0 && out_sent * 2 >= out.size()) {
    out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(out_sent));
    out_sent = 0;
  }
  out.insert(out.end(), data, data + len);
}

// Any alert mbedTLS wanted to send is already in `out`; the rest of its state
// is freed now rather than when the connection object goes away.
Session::Result Session::Impl::fail(int code, const char* why) {
  state = State::kFailed;
  mbed_error = code;
  reason = why;
  ssl.reset();
  reset_buffer(in, false);
  in_read = 0;
  return Result::kError;
}

void Session::Impl::end_cleanly() {
  if (state == State::kOpen) mbedtls_ssl_close_notify(&ssl->ctx);
  state = State::kClosed;
  ssl.reset();
  reset_buffer(in, false);
  in_read = 0;
}

// The first byte of the connection arrived: only now does the session cost
// mbedTLS's context and its two record buffers.
Session::Result Session::Impl::start(mbedtls_ssl_config& conf) {
  ssl = std::make_unique<Ssl>();
  if (const int ret = mbedtls_ssl_setup(&ssl->ctx, &conf); ret != 0) return fail(ret);
  mbedtls_ssl_set_bio(&ssl->ctx, this, bio_send, bio_recv, nullptr);
  return Result::kWantMore;
}

Session::Result Session::Impl::drive_handshake() {
  const int ret = mbedtls_ssl_handshake(&ssl->ctx);
  if (ret == MBEDTLS_ERR_SSL_WANT_READ) return Result::kWantMore;
  if (ret != 0) return fail(ret);
  state = State::kOpen;
  suite = mbedtls_ssl_get_ciphersuite(&ssl->ctx);
  return Result::kOk;
}

Session::Session(ThreadContext& thread) : thread_(&thread) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

Session::Result Session::feed(const std::uint8_t* data, std::size_t len) {
  if (!impl_) impl_ = std::make_unique<Impl>();
  Impl& s = *impl_;
  if (s.state == Impl::State::kClosed) return Result::kClosed;
  if (s.state == Impl::State::kFailed) return Result::kError;
  if (len == 0) return s.state == Impl::State::kOpen ? Result::kOk : Result::kWantMore;
  if (!s.ssl) {
    // Checked here, before mbedTLS, to give the shard's log a reason that
    // names the usual cause instead of a record-layer error code.
    if (!looks_like_client_hello({data, std::min<std::size_t>(len, kRecordHeaderBytes + 1)}))
      return s.fail(0,
                    "not TLS: the first bytes are not a ClientHello (plain HTTP on a TLS port?)");
    if (s.start(thread_->impl_->conf) == Result::kError) return Result::kError;
  }
  if (s.pending_in() + len > input_backlog_bytes_max)
    return s.fail(0, "undecrypted input over the backlog limit (read_plain not called)");
  s.append_input(data, len);
  if (s.state == Impl::State::kHandshake) return s.drive_handshake();
  return Result::kOk;
}

Session::Result Session::read_plain(std::uint8_t* out, std::size_t cap, std::size_t& got) {
  RC_ASSERT(cap > 0);
  got = 0;
  if (!impl_) return Result::kWantMore;
  Impl& s = *impl_;
  while (s.state == Impl::State::kOpen && got < cap) {
    const int ret = mbedtls_ssl_read(&s.ssl->ctx, out + got, cap - got);
    if (ret > 0) {
      got += static_cast<std::size_t>(ret);
    } else if (ret == MBEDTLS_ERR_SSL_WANT_READ) {
      break;
    } else if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
      s.end_cleanly();  // answers with our own close_notify (RFC 5246 7.2.1)
    } else {
      // 0 would mean the transport reported end of file, which bio_recv never does.
      s.fail(ret, ret == 0 ? "unexpected end of input" : nullptr);
    }
  }
  if (got > 0) return Result::kOk;
  switch (s.state) {
    case Impl::State::kClosed:
      return Result::kClosed;
    case Impl::State::kFailed:
      return Result::kError;
    default:
      return Result::kWantMore;
  }
}

Session::Result Session::read_plain(std::string& out, std::size_t max) {
  const std::size_t old_size = out.size();
  out.resize(old_size + max);
  std::size_t got = 0;
  const Result r = read_plain(reinterpret_cast<std::uint8_t*>(out.data()) + old_size, max, got);
  out.resize(old_size + got);
  return r;
}

Session::Result Session::write_plain(const std::uint8_t* data, std::size_t len) {
  RC_ASSERT(impl_ != nullptr);
  Impl& s = *impl_;
  if (s.state == Impl::State::kClosed) return Result::kClosed;
  if (s.state == Impl::State::kFailed) return Result::kError;
  RC_ASSERT(s.state == Impl::State::kOpen);
  if (len == 0) return Result::kOk;

  const int payload = mbedtls_ssl_get_max_out_record_payload(&s.ssl->ctx);
  const int expansion = mbedtls_ssl_get_record_expansion(&s.ssl->ctx);
  RC_ASSERT(payload > 0 && expansion > 0);
  const std::size_t records = (len + static_cast<std::size_t>(payload) - 1) / payload;
  const std::size_t bytes = len + records * static_cast<std::size_t>(expansion);
  RC_ASSERT(bytes <= pending_output_bytes_max);  // a single write must fit the queue
  if (s.pending_out() + bytes > pending_output_bytes_max) return Result::kWantMore;

  s.out.reserve(s.out.size() + bytes);
  std::size_t done = 0;
  while (done < len) {
    const int ret = mbedtls_ssl_write(&s.ssl->ctx, data + done, len - done);
    if (ret <= 0) {
      RC_ASSERT(ret != MBEDTLS_ERR_SSL_WANT_WRITE);  // bio_send never refuses
      return s.fail(ret);
    }
    done += static_cast<std::size_t>(ret);
  }
  return Result::kOk;
}

std::span<const std::uint8_t> Session::pending_output() const {
  if (!impl_) return {};
  return {impl_->out.data() + impl_->out_sent, impl_->pending_out()};
}

void Session::consumed(std::size_t n) {
  if (n == 0) return;
  RC_ASSERT(impl_ != nullptr && n <= impl_->pending_out());
  impl_->out_sent += n;
  if (impl_->out_sent == impl_->out.size()) {
    reset_buffer(impl_->out, impl_->live());
    impl_->out_sent = 0;
  }
}

std::size_t Session::take_output(std::vector<std::uint8_t>& into) {
  if (!impl_) return 0;
  Impl& s = *impl_;
  const std::size_t n = s.pending_out();
  if (n == 0) return 0;
  if (into.empty() && s.out_sent == 0) {
    into.swap(s.out);
    s.out.clear();
  } else {
    into.insert(into.end(), s.out.begin() + static_cast<std::ptrdiff_t>(s.out_sent), s.out.end());
    reset_buffer(s.out, s.live());
  }
  s.out_sent = 0;
  return n;
}

// The configurations of two ThreadContexts differ only in their generator
// and key copy, so pointing the live context at the new thread's keeps every
// negotiated parameter and stops any later use of the old thread's generator
// or key (mbedTLS 2.28 keeps `conf` as a plain member; no setter exists).
// The old context may then go away first.
void Session::rebind(ThreadContext& thread) {
  RC_ASSERT(impl_ == nullptr || impl_->state != Impl::State::kHandshake);
  thread_ = &thread;
  if (impl_ && impl_->ssl) impl_->ssl->ctx.conf = &thread.impl_->conf;
}

bool Session::handshake_done() const {
  return impl_ != nullptr && impl_->suite != nullptr;
}

void Session::close_notify() {
  if (!impl_) impl_ = std::make_unique<Impl>();
  Impl::State state = impl_->state;
  if (state == Impl::State::kHandshake || state == Impl::State::kOpen) impl_->end_cleanly();
}

std::string Session::error() const {
  if (!impl_ || impl_->state != Impl::State::kFailed) return {};
  if (impl_->reason == nullptr) return mbed_error_text(impl_->mbed_error);
  if (impl_->mbed_error == 0) return impl_->reason;
  return fmt::format("{}: {}", impl_->reason, mbed_error_text(impl_->mbed_error));
}

std::string_view Session::ciphersuite() const {
  return impl_ != nullptr && impl_->suite != nullptr ? impl_->suite : std::string_view();
}

}  // namespace rc::tls
