// Costs of the crypto on rollcall's request paths: JWT verification (HMAC over
// the header and payload), chat at rest (AES-256-GCM per message), the
// WebSocket handshake (SHA-1 + base64) and session tokens (DRBG).

#include <benchmark/benchmark.h>

#include <string>

#include "core/crypto.h"

namespace {

using namespace rc::crypto;

// A typical JWT signing input: base64url(header) "." base64url(payload) of a
// token with sub, name, role, rooms, exp: about 300 bytes.
std::string jwt_signing_input() {
  const std::string header = base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  const std::string payload = base64url_encode(
      R"({"sub":"student-000042","name":"Ada Lovelace","role":"student",)"
      R"("rooms":["physics-101","physics-101-lab","maths-201","chemistry-7"],)"
      R"("iat":1763798400,"nbf":1763798400,"exp":1763802000,"iss":"lms.example"})");
  return header + "." + payload;
}

void BM_HmacSha256_300(benchmark::State& state) {
  std::string input = jwt_signing_input();
  input.resize(300, 'x');
  const std::string secret(32, 's');
  for (auto _ : state) {
    auto mac = hmac_sha256(secret, input);
    benchmark::DoNotOptimize(mac);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 300);
}
BENCHMARK(BM_HmacSha256_300);

// A 200-byte chat record body sealed with its room/seq as AAD.
void BM_AeadSeal200(benchmark::State& state) {
  auto aead = Aead::create(std::string(kAeadKeyBytes, 'k'));
  const std::string nonce(kAeadNonceBytes, 'n');
  const std::string aad = "physics-101/0000000000000017";
  const std::string plain(200, 'p');
  std::string out;
  out.reserve(plain.size() + kAeadTagBytes);
  for (auto _ : state) {
    aead->seal(nonce, aad, plain, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 200);
}
BENCHMARK(BM_AeadSeal200);

void BM_AeadOpen200(benchmark::State& state) {
  auto aead = Aead::create(std::string(kAeadKeyBytes, 'k'));
  const std::string nonce(kAeadNonceBytes, 'n');
  const std::string aad = "physics-101/0000000000000017";
  std::string sealed, out;
  aead->seal(nonce, aad, std::string(200, 'p'), sealed);
  for (auto _ : state) {
    const bool ok = aead->open(nonce, aad, sealed, out);
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 200);
}
BENCHMARK(BM_AeadOpen200);

// Sec-WebSocket-Accept: base64(SHA-1(key + GUID)).
void BM_WebSocketAccept(benchmark::State& state) {
  const std::string key = "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  for (auto _ : state) {
    const auto digest = sha1(key);
    std::string accept =
        base64_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), 20));
    benchmark::DoNotOptimize(accept);
  }
}
BENCHMARK(BM_WebSocketAccept);

void BM_Base64UrlDecodeJwtPayload(benchmark::State& state) {
  const std::string input = jwt_signing_input();
  const std::string payload = input.substr(input.find('.') + 1);
  for (auto _ : state) {
    auto decoded = base64url_decode(payload);
    benchmark::DoNotOptimize(decoded);
  }
}
BENCHMARK(BM_Base64UrlDecodeJwtPayload);

void BM_RandomToken16(benchmark::State& state) {
  Random random;
  for (auto _ : state) {
    std::string token = random.token(16);
    benchmark::DoNotOptimize(token);
  }
}
BENCHMARK(BM_RandomToken16);

}  // namespace
