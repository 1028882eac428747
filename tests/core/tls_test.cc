#include "core/tls.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/core/tls_test_peer.h"

namespace rc::tls {
namespace {

using namespace test_peer;
using R = Session::Result;

const Pem& ec_pem() {
  static const Pem pem = make_self_signed();
  return pem;
}

const Pem& rsa_pem() {
  static const Pem pem = make_self_signed({.key = KeyKind::kRsa2048});
  return pem;
}

std::unique_ptr<ServerContext> server_context(const Pem& pem) {
  auto ctx = ServerContext::from_pem(pem.cert, pem.key);
  EXPECT_TRUE(ctx.is_ok()) << ctx.status().message();
  return std::move(*ctx);
}

std::vector<std::uint8_t> bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

std::string pattern(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen());
  return s;
}

// Decrypts everything the session holds, in pieces of at most `cap` bytes.
R read_all(Session& s, std::string& out, std::size_t cap = 4096) {
  for (;;) {
    const R r = s.read_plain(out, cap);
    if (r != R::kOk) return r;
  }
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = server_context(ec_pem());
    thread_ = std::make_unique<ThreadContext>(*server_);
  }

  // A session with a finished handshake against `client`.
  Session connected(Client& client) {
    Session s(*thread_);
    EXPECT_TRUE(run_handshake(client, s));
    return s;
  }

  std::unique_ptr<ServerContext> server_;
  std::unique_ptr<ThreadContext> thread_;
};

// ---- looks_like_client_hello

TEST_F(TlsTest, RealClientHelloLooksLikeOneAtEveryPrefix) {
  Client client(ec_pem().cert);
  ASSERT_EQ(client.handshake(), MBEDTLS_ERR_SSL_WANT_READ);
  const auto& hello = client.to_server;
  ASSERT_GT(hello.size(), 6u);
  for (std::size_t n = 1; n <= 8; ++n) EXPECT_TRUE(looks_like_client_hello({hello.data(), n})) << n;
  EXPECT_TRUE(looks_like_client_hello(hello));
}

TEST(TlsLooksLike, OtherFirstBytesDoNot) {
  const std::vector<std::vector<std::uint8_t>> others = {
      {},
      bytes("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
      bytes("PRI * HTTP/2.0\r\n"),
      {0x15, 0x03, 0x03, 0x00, 0x02, 0x02},  // an alert record
      {0x17, 0x03, 0x03},                    // application data
      {0x16, 0x02},                          // SSL 2 major version
      {0x16, 0x03, 0x05},                    // unknown minor version
      {0x16, 0x03, 0x01, 0x00, 0x00},        // empty record
      {0x16, 0x03, 0x01, 0x41},              // longer than a record may be
      {0x16, 0x03, 0x03, 0x00, 0x40, 0x02},  // a ServerHello
      {0x80, 0x2e, 0x01, 0x03, 0x01},        // SSLv2-style ClientHello
  };
  for (const auto& b : others) EXPECT_FALSE(looks_like_client_hello(b)) << b.size();
}

// ---- handshakes

TEST_F(TlsTest, HandshakeWithEcdsaCertificate) {
  Client client(ec_pem().cert);
  Session s(*thread_);
  EXPECT_FALSE(s.handshake_done());
  EXPECT_EQ(s.ciphersuite(), "");
  ASSERT_TRUE(run_handshake(client, s));
  EXPECT_TRUE(s.handshake_done());
  EXPECT_EQ(s.ciphersuite(), "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256");
  EXPECT_STREQ(mbedtls_ssl_get_version(&client.ssl()), "TLSv1.2");
  EXPECT_EQ(mbedtls_ssl_get_verify_result(&client.ssl()), 0u);  // chain and host name verified
  ASSERT_NE(mbedtls_ssl_get_alpn_protocol(&client.ssl()), nullptr);
  EXPECT_STREQ(mbedtls_ssl_get_alpn_protocol(&client.ssl()), "http/1.1");
  EXPECT_EQ(s.error(), "");
}

TEST_F(TlsTest, HandshakeWithRsaCertificate) {
  auto server = server_context(rsa_pem());
  ThreadContext thread(*server);
  Client client(rsa_pem().cert);
  Session s(thread);
  ASSERT_TRUE(run_handshake(client, s));
  EXPECT_EQ(s.ciphersuite(), "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256");
  EXPECT_EQ(mbedtls_ssl_get_verify_result(&client.ssl()), 0u);
}

TEST_F(TlsTest, ChaChaWhenTheClientOffersOnlyThat) {
  static const int kChaCha[] = {MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, 0};
  Client client(ec_pem().cert, {.suites = kChaCha});
  Session s = connected(client);
  EXPECT_EQ(s.ciphersuite(), "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256");
  ASSERT_EQ(client.write("over chacha"), 0);
  client_to_server(client, s);
  std::string got;
  EXPECT_EQ(read_all(s, got), R::kWantMore);
  EXPECT_EQ(got, "over chacha");
}

TEST_F(TlsTest, ByteAtATimeBothWays) {
  Client client(ec_pem().cert);
  Session s(*thread_);
  ASSERT_TRUE(run_handshake(client, s, /*chunk=*/1));
  ASSERT_EQ(client.write("one byte at a time"), 0);
  const std::vector<std::uint8_t> record = client.to_server;
  client.to_server.clear();
  std::string got;
  for (std::size_t i = 0; i < record.size(); ++i) {
    ASSERT_EQ(s.feed(&record[i], 1), R::kOk);
    const R r = read_all(s, got);
    ASSERT_EQ(r, R::kWantMore);
    if (i + 1 < record.size()) {
      ASSERT_EQ(got, "") << i;
    }
  }
  EXPECT_EQ(got, "one byte at a time");
}

// ---- application data

TEST_F(TlsTest, EchoSmallMessages) {
  Client client(ec_pem().cert);
  Session s = connected(client);
  ASSERT_EQ(client.write("hello"), 0);
  ASSERT_EQ(client_to_server(client, s), R::kOk);
  std::uint8_t buf[64];
  std::size_t got = 0;
  ASSERT_EQ(s.read_plain(buf, sizeof buf, got), R::kOk);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), got), "hello");
  EXPECT_EQ(s.read_plain(buf, sizeof buf, got), R::kWantMore);
  EXPECT_EQ(got, 0u);

  const auto reply = bytes("world");
  ASSERT_EQ(s.write_plain(reply.data(), reply.size()), R::kOk);
  server_to_client(s, client);
  std::string plain;
  EXPECT_EQ(client.read(plain), MBEDTLS_ERR_SSL_WANT_READ);
  EXPECT_EQ(plain, "world");
}

TEST_F(TlsTest, Echo100KiBBothWays) {
  Client client(ec_pem().cert);
  Session s = connected(client);
  const std::string up = pattern(100 * 1024, 1);
  ASSERT_EQ(client.write(up), 0);
  // Delivered as a shard would: one receive buffer at a time, each drained.
  std::string got;
  const auto wire = client.to_server;
  client.to_server.clear();
  for (std::size_t at = 0; at < wire.size(); at += limits::recv_buffer_bytes) {
    const std::size_t n = std::min<std::size_t>(limits::recv_buffer_bytes, wire.size() - at);
    ASSERT_EQ(s.feed(wire.data() + at, n), R::kOk);
    ASSERT_EQ(read_all(s, got, 3000), R::kWantMore);
  }
  EXPECT_EQ(got, up);

  const std::string down = pattern(100 * 1024, 2);
  ASSERT_EQ(s.write_plain(reinterpret_cast<const std::uint8_t*>(down.data()), down.size()), R::kOk);
  // Seven full-size records of AES-GCM: 5 header + 8 nonce + 16 tag bytes each.
  EXPECT_EQ(s.pending_output().size(), ciphertext_bytes_max(down.size()));
  server_to_client(s, client, /*chunk=*/1000);  // partial sends
  std::string plain;
  EXPECT_EQ(client.read(plain), MBEDTLS_ERR_SSL_WANT_READ);
  EXPECT_EQ(plain, down);
}

TEST_F(TlsTest, WritesAfterPartialSendsKeepOrder) {
  Client client(ec_pem().cert);
  Session s = connected(client);
  std::string expected;
  std::vector<std::uint8_t> wire;
  for (int i = 0; i < 50; ++i) {
    const std::string frame = "frame " + std::to_string(i) + pattern(i * 37, i);
    expected += frame;
    ASSERT_EQ(s.write_plain(reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size()),
              R::kOk);
    const auto out = s.pending_output();
    const std::size_t n = out.size() / 3 + 1;  // a send that took only part
    wire.insert(wire.end(), out.begin(), out.begin() + n);
    s.consumed(n);
  }
  const auto rest = s.pending_output();
  wire.insert(wire.end(), rest.begin(), rest.end());
  s.consumed(rest.size());
  EXPECT_TRUE(s.pending_output().empty());
  client.from_server = wire;
  std::string plain;
  EXPECT_EQ(client.read(plain), MBEDTLS_ERR_SSL_WANT_READ);
  EXPECT_EQ(plain, expected);
}

TEST_F(TlsTest, TakeOutputMovesTheCiphertext) {
  Client client(ec_pem().cert);
  Session s = connected(client);
  const auto a = bytes("first"), b = bytes("second");
  ASSERT_EQ(s.write_plain(a.data(), a.size()), R::kOk);
  const std::vector<std::uint8_t> expected(s.pending_output().begin(), s.pending_output().end());
  std::vector<std::uint8_t> sent;
  EXPECT_EQ(s.take_output(sent), expected.size());
  EXPECT_EQ(sent, expected);
  EXPECT_TRUE(s.pending_output().empty());
  EXPECT_EQ(s.take_output(sent), 0u);

  ASSERT_EQ(s.write_plain(b.data(), b.size()), R::kOk);
  const std::size_t second = s.pending_output().size();
  EXPECT_EQ(s.take_output(sent), second);  // appended to what the caller still holds
  EXPECT_EQ(sent.size(), expected.size() + second);
  client.from_server = sent;
  std::string plain;
  EXPECT_EQ(client.read(plain), MBEDTLS_ERR_SSL_WANT_READ);
  EXPECT_EQ(plain, "firstsecond");
}

TEST_F(TlsTest, OutputQueueIsBounded) {
  Client client(ec_pem().cert);
  Session s = connected(client);
  const std::string chunk(256 * 1024, 'x');
  const auto* data = reinterpret_cast<const std::uint8_t*>(chunk.data());
  int accepted = 0;
  while (s.write_plain(data, chunk.size()) == R::kOk) ++accepted;
  EXPECT_EQ(accepted,
            static_cast<int>(pending_output_bytes_max / ciphertext_bytes_max(chunk.size())));
  const std::size_t pending = s.pending_output().size();
  EXPECT_LE(pending, pending_output_bytes_max);
  EXPECT_EQ(s.write_plain(data, chunk.size()), R::kWantMore);  // nothing written
  EXPECT_EQ(s.pending_output().size(), pending);
  s.consumed(pending);
  EXPECT_EQ(s.write_plain(data, chunk.size()), R::kOk);
}

TEST_F(TlsTest, UnreadInputIsBounded) {
  Client client(ec_pem().cert);
  Session s = connected(client);
  const std::vector<std::uint8_t> blob(input_backlog_bytes_max / 2 + 1, 0x17);
  EXPECT_EQ(s.feed(blob.data(), blob.size()), R::kOk);  // held for read_plain
  EXPECT_EQ(s.feed(blob.data(), blob.size()), R::kError);
  EXPECT_NE(s.error().find("backlog"), std::string::npos) << s.error();
}

// ---- endings

TEST_F(TlsTest, ServerCloseNotify) {
  Client client(ec_pem().cert);
  Session s = connected(client);
  s.close_notify();
  ASSERT_FALSE(s.pending_output().empty());
  server_to_client(s, client);
  std::string plain;
  EXPECT_EQ(client.read(plain), MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY);
  const auto more = bytes("late");
  EXPECT_EQ(s.write_plain(more.data(), more.size()), R::kClosed);
  EXPECT_EQ(s.feed(more.data(), more.size()), R::kClosed);
  std::string got;
  EXPECT_EQ(s.read_plain(got, 16), R::kClosed);
  EXPECT_TRUE(s.handshake_done());
  EXPECT_EQ(s.ciphersuite(), "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256");
  EXPECT_EQ(s.error(), "");
  s.close_notify();  // harmless twice
  EXPECT_TRUE(s.pending_output().empty());
}

TEST_F(TlsTest, ClientCloseNotifyAfterDataIsAnsweredInKind) {
  Client client(ec_pem().cert);
  Session s = connected(client);
  ASSERT_EQ(client.write("bye"), 0);
  ASSERT_EQ(client.close_notify(), 0);
  ASSERT_EQ(client_to_server(client, s), R::kOk);
  std::string got;
  EXPECT_EQ(s.read_plain(got, 64), R::kOk);  // the data first
  EXPECT_EQ(got, "bye");
  EXPECT_EQ(s.read_plain(got, 64), R::kClosed);
  server_to_client(s, client);  // our close_notify reply
  std::string plain;
  EXPECT_EQ(client.read(plain), MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY);
}

TEST_F(TlsTest, CloseBeforeAnyByteSendsNothing) {
  Session s(*thread_);
  s.close_notify();
  EXPECT_TRUE(s.pending_output().empty());
  const auto hello = bytes("\x16\x03\x01");
  EXPECT_EQ(s.feed(hello.data(), hello.size()), R::kClosed);
}

// ---- failures

TEST_F(TlsTest, PlainHttpOnTheTlsPortFails) {
  Session s(*thread_);
  const auto request = bytes("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n\r\n");
  EXPECT_FALSE(looks_like_client_hello(request));
  EXPECT_EQ(s.feed(request.data(), request.size()), R::kError);
  EXPECT_NE(s.error().find("not TLS"), std::string::npos) << s.error();
  EXPECT_TRUE(s.pending_output().empty());  // nothing to send a plaintext client
  EXPECT_EQ(s.feed(request.data(), request.size()), R::kError);
  std::string got;
  EXPECT_EQ(s.read_plain(got, 16), R::kError);
  EXPECT_FALSE(s.handshake_done());
}

TEST_F(TlsTest, GarbageAfterAHandshakeHeaderFails) {
  for (unsigned seed = 0; seed < 200; ++seed) {
    Session s(*thread_);
    const std::string body = pattern(1 + seed * 7 % 600, seed);
    std::vector<std::uint8_t> record = {0x16, 0x03, 0x01,
                                        static_cast<std::uint8_t>(body.size() >> 8),
                                        static_cast<std::uint8_t>(body.size())};
    if (seed % 2 == 0) record.push_back(0x01);  // even claims to be a ClientHello
    record.insert(record.end(), body.begin(), body.end());
    record.resize(5 + body.size());
    const R r = s.feed(record.data(), record.size());
    EXPECT_EQ(r, R::kError) << seed;
    EXPECT_FALSE(s.error().empty());
    EXPECT_FALSE(s.handshake_done());
  }
}

TEST_F(TlsTest, ABadSessionDoesNotHarmAnother) {
  Client client(ec_pem().cert);
  Session good(*thread_);
  ASSERT_EQ(client.handshake(), MBEDTLS_ERR_SSL_WANT_READ);
  ASSERT_EQ(client_to_server(client, good), R::kWantMore);
  Session bad(*thread_);
  const std::vector<std::uint8_t> junk = {0x16, 0x03, 0x03, 0x00, 0x05,
                                          0x01, 0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(bad.feed(junk.data(), junk.size()), R::kError);
  server_to_client(good, client);
  ASSERT_TRUE(run_handshake(client, good));
  ASSERT_EQ(client.write("still fine"), 0);
  client_to_server(client, good);
  std::string got;
  EXPECT_EQ(read_all(good, got), R::kWantMore);
  EXPECT_EQ(got, "still fine");
}

TEST_F(TlsTest, OldProtocolVersionIsRefusedWithAnAlert) {
  Client client(ec_pem().cert, {.min_minor = MBEDTLS_SSL_MINOR_VERSION_1,
                                .max_minor = MBEDTLS_SSL_MINOR_VERSION_2});
  Session s(*thread_);
  EXPECT_FALSE(run_handshake(client, s));
  EXPECT_NE(s.error(), "");
  EXPECT_GT(server_to_client(s, client), 0u);  // the protocol_version alert
  EXPECT_EQ(client.handshake(), MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE);
}

TEST_F(TlsTest, NoSharedSuiteIsRefusedWithAnAlert) {
  static const int kCbcOnly[] = {MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, 0};
  Client client(ec_pem().cert, {.suites = kCbcOnly});
  Session s(*thread_);
  EXPECT_FALSE(run_handshake(client, s));
  EXPECT_NE(s.error(), "");
  EXPECT_GT(server_to_client(s, client), 0u);  // handshake_failure
  EXPECT_EQ(client.handshake(), MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE);
}

TEST_F(TlsTest, ClientThatRejectsTheCertificateEndsTheSession) {
  Client client(ec_pem().cert, {.hostname = "rollcall.example"});
  Session s(*thread_);
  EXPECT_FALSE(run_handshake(client, s));  // the client's verification fails
  client_to_server(client, s);             // with its bad_certificate alert
  EXPECT_FALSE(s.handshake_done());
  std::string got;
  EXPECT_EQ(s.read_plain(got, 16), R::kError);
  EXPECT_NE(s.error(), "");
}

TEST_F(TlsTest, TamperedRecordFails) {
  Client client(ec_pem().cert);
  Session s = connected(client);
  ASSERT_EQ(client.write("pay 10 EUR"), 0);
  client.to_server.back() ^= 0x01;  // inside the GCM tag
  ASSERT_EQ(client_to_server(client, s), R::kOk);
  std::string got;
  EXPECT_EQ(s.read_plain(got, 64), R::kError);
  EXPECT_EQ(got, "");
  EXPECT_NE(s.error(), "");
  EXPECT_FALSE(s.pending_output().empty());  // bad_record_mac alert
  const auto more = bytes("x");
  EXPECT_EQ(s.write_plain(more.data(), more.size()), R::kError);
}

TEST_F(TlsTest, WritingBeforeTheHandshakeIsAProgrammerError) {
  Client client(ec_pem().cert);
  Session s(*thread_);
  ASSERT_EQ(client.handshake(), MBEDTLS_ERR_SSL_WANT_READ);
  client_to_server(client, s);
  const auto data = bytes("too early");
  EXPECT_DEATH(s.write_plain(data.data(), data.size()), "assertion failed");
}

// A session moves between shards only with a finished handshake (the shard
// hands a connection off once its request head has been read); moving one
// mid-handshake is a programmer error, caught in release builds too.
TEST_F(TlsTest, RebindDuringTheHandshakeIsAProgrammerError) {
  Client client(ec_pem().cert);
  Session s(*thread_);
  ThreadContext other(*server_);
  s.rebind(other);  // before the first byte: fine
  ASSERT_EQ(client.handshake(), MBEDTLS_ERR_SSL_WANT_READ);
  ASSERT_EQ(client_to_server(client, s), R::kWantMore);
  EXPECT_DEATH(s.rebind(*thread_), "assertion failed");
}

// ---- loading certificates and keys

class TlsLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("rollcall-tls-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const auto path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  // The error message of load(cert, key); empty when it succeeds.
  static std::string load_error(const std::string& cert, const std::string& key) {
    auto ctx = ServerContext::load(cert, key);
    return ctx.is_ok() ? std::string() : ctx.status().message();
  }

  std::filesystem::path dir_;
};

TEST_F(TlsLoadTest, LoadsMatchingFilesAndSummarises) {
  const auto cert = write("cert.pem", ec_pem().cert), key = write("key.pem", ec_pem().key);
  auto ctx = ServerContext::load(cert, key);
  ASSERT_TRUE(ctx.is_ok()) << ctx.status().message();
  const std::string summary = (*ctx)->summary();
  EXPECT_NE(summary.find("CN=localhost"), std::string::npos) << summary;
  EXPECT_NE(summary.find("EC P-256"), std::string::npos) << summary;
  EXPECT_NE(summary.find("2099-12-31"), std::string::npos) << summary;
  EXPECT_EQ(summary.find("EXPIRED"), std::string::npos) << summary;
}

TEST_F(TlsLoadTest, ErrorsNameTheFile) {
  const auto cert = write("cert.pem", ec_pem().cert), key = write("key.pem", ec_pem().key);
  const auto missing = (dir_ / "missing.pem").string();
  EXPECT_NE(load_error(missing, key).find(missing), std::string::npos);
  EXPECT_NE(load_error(cert, missing).find(missing), std::string::npos);

  const auto junk = write("junk.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n");
  std::string e = load_error(junk, key);
  EXPECT_NE(e.find("no usable certificate in '" + junk + "'"), std::string::npos) << e;
  e = load_error(key, key);  // a key where the certificate belongs
  EXPECT_NE(e.find(key), std::string::npos) << e;
  e = load_error(cert, cert);  // a certificate where the key belongs
  EXPECT_NE(e.find("no usable private key in '" + cert + "'"), std::string::npos) << e;
  e = load_error(write("empty.pem", ""), key);
  EXPECT_NE(e.find("empty.pem"), std::string::npos) << e;
}

TEST_F(TlsLoadTest, KeyThatDoesNotMatchTheCertificate) {
  const Pem other = make_self_signed();
  const auto cert = write("cert.pem", ec_pem().cert), key = write("other-key.pem", other.key);
  const std::string e = load_error(cert, key);
  EXPECT_NE(e.find("does not match"), std::string::npos) << e;
  EXPECT_NE(e.find(cert), std::string::npos) << e;
  EXPECT_NE(e.find(key), std::string::npos) << e;
  // An RSA key against an EC certificate, too.
  EXPECT_NE(load_error(cert, write("rsa-key.pem", rsa_pem().key)).find("does not match"),
            std::string::npos);
}

TEST_F(TlsLoadTest, WeakOrUnusualKeysAreRefused) {
  const Pem rsa1024 = make_self_signed({.key = KeyKind::kRsa1024});
  std::string e = load_error(write("c1.pem", rsa1024.cert), write("k1.pem", rsa1024.key));
  EXPECT_NE(e.find("at least 2048"), std::string::npos) << e;
  const Pem p521 = make_self_signed({.key = KeyKind::kEcP521});
  e = load_error(write("c2.pem", p521.cert), write("k2.pem", p521.key));
  EXPECT_NE(e.find("P-256 or P-384"), std::string::npos) << e;
}

TEST_F(TlsLoadTest, CertificateNotUsableForTlsServers) {
  const Pem ca_only = make_self_signed({.key_usage = MBEDTLS_X509_KU_KEY_CERT_SIGN});
  const std::string e = load_error(write("c.pem", ca_only.cert), write("k.pem", ca_only.key));
  EXPECT_NE(e.find("digitalSignature"), std::string::npos) << e;
}

TEST_F(TlsLoadTest, ExpiredCertificateLoadsButSaysSo) {
  const Pem old = make_self_signed({.not_after = "20240601000000"});
  auto ctx = ServerContext::from_pem(old.cert, old.key);
  ASSERT_TRUE(ctx.is_ok()) << ctx.status().message();
  EXPECT_NE((*ctx)->summary().find("EXPIRED"), std::string::npos);
}

// ---- threads and memory

TEST(TlsThreads, ShardThreadsShareOneServerContext) {
  auto server = server_context(ec_pem());
  std::vector<int> ok(3, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < ok.size(); ++t) {
    threads.emplace_back([&, t] {
      ThreadContext thread(*server);
      for (int i = 0; i < 8; ++i) {
        Client client(ec_pem().cert);
        Session s(thread);
        if (run_handshake(client, s)) ++ok[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int n : ok) EXPECT_EQ(n, 8);
}

TEST(TlsThreads, RebindMovesASessionToAnotherShard) {
  auto server = server_context(ec_pem());
  auto origin = std::make_unique<ThreadContext>(*server);
  Client client(ec_pem().cert);
  Session s(*origin);
  ASSERT_TRUE(run_handshake(client, s));
  std::string got;
  std::thread([&] {
    ThreadContext target(*server);
    s.rebind(target);
    origin.reset();  // the old shard's context may go away now
    EXPECT_EQ(client.write("after the handoff"), 0);
    client_to_server(client, s);
    EXPECT_EQ(read_all(s, got), R::kWantMore);
    const auto reply = bytes("reply");
    EXPECT_EQ(s.write_plain(reply.data(), reply.size()), R::kOk);
    s.close_notify();
    server_to_client(s, client);
  }).join();
  EXPECT_EQ(got, "after the handoff");
  std::string plain;
  EXPECT_EQ(client.read(plain), MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY);
  EXPECT_EQ(plain, "reply");
}

std::size_t heap_in_use() {
  return mallinfo2().uordblks;
}

// Measures what a session costs while idle, and checks that its mbedTLS state
// is given back at the end. Skipped where malloc is replaced (sanitizers).
TEST_F(TlsTest, IdleFootprintAndReleaseAtClose) {
  {
    const std::size_t before = heap_in_use();
    auto probe = std::make_unique<std::vector<char>>(1 << 20);
    if (heap_in_use() - before < (1 << 20)) GTEST_SKIP() << "mallinfo2 does not see this heap";
  }
  {
    // The first handshake of a thread caches ECDSA precomputation in its key copy.
    Client client(ec_pem().cert);
    Session warm_up(*thread_);
    ASSERT_TRUE(run_handshake(client, warm_up));
  }
  constexpr int kSessions = 64;  // spreads the few freed chunks malloc caches per thread
  std::vector<Session> sessions;
  sessions.reserve(kSessions);
  const std::size_t empty = heap_in_use();
  for (int i = 0; i < kSessions; ++i) sessions.emplace_back(*thread_);
  EXPECT_EQ(heap_in_use(), empty) << "a session before its first byte allocates nothing";

  {
    std::vector<std::unique_ptr<Client>> clients;
    for (auto& s : sessions) {
      clients.push_back(std::make_unique<Client>(ec_pem().cert));
      ASSERT_TRUE(run_handshake(*clients.back(), s));
    }
  }
  const std::size_t established = heap_in_use();
  for (auto& s : sessions) {
    s.close_notify();
    s.consumed(s.pending_output().size());
  }
  const std::size_t closed = heap_in_use();
  const std::size_t total = (established - empty) / kSessions;
  const std::size_t mbedtls_state = (established - closed) / kSessions;
  const std::size_t left = (closed - empty) / kSessions;
  std::printf(
      "[ footprint] idle established TLS session: %zu heap bytes, of which %zu of mbedTLS "
      "state freed at close; %zu left after close\n",
      total, mbedtls_state, left);
  ::testing::Test::RecordProperty("tls_session_bytes", static_cast<int>(total));
  EXPECT_GT(mbedtls_state, 2 * record_plain_bytes_max);  // the two record buffers are freed
  EXPECT_LT(total, 48u * 1024);
  EXPECT_LT(left, 512u);  // the small Impl, plus noise from chunks malloc keeps per thread
}

}  // namespace
}  // namespace rc::tls
