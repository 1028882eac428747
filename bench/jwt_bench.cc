// Cost of verifying a Bearer token (protocol/jwt.h), paid once per ticket
// request or WebSocket upgrade. Baseline measured in the same run:
// BM_VerifyToken_HmacOnly, the HMAC-SHA256 over the same signing input that
// verification cannot avoid; the rest of BM_VerifyToken is base64url decoding,
// JSON parsing and claim checks.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <variant>

#include "core/crypto.h"
#include "protocol/jwt.h"

namespace {

constexpr std::string_view kSecret = "0123456789abcdef0123456789abcdef";
constexpr std::int64_t kNow = 1763798400;

// A typical token: a student with a display name and two rooms, about 250 bytes.
std::string typical_token() {
  rc::jwt::Claims c;
  c.sub = "student-000042";
  c.name = "Ada Lovelace";
  c.has_name = true;
  c.rooms = {"physics-101", "physics-lab"};
  c.exp_s = kNow + 3600;
  c.nbf_s = kNow;
  return rc::jwt::sign(c, kSecret);
}

void BM_VerifyToken(benchmark::State& state) {
  const std::string token = typical_token();
  for (auto _ : state) {
    auto result = rc::jwt::verify(token, kSecret, kNow);
    benchmark::DoNotOptimize(result);
    if (!std::holds_alternative<rc::jwt::Claims>(result)) state.SkipWithError("token rejected");
  }
  state.counters["token_bytes"] = static_cast<double>(token.size());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * token.size()));
}
BENCHMARK(BM_VerifyToken);

void BM_VerifyToken_HmacOnly(benchmark::State& state) {
  const std::string token = typical_token();
  const std::string_view signing_input = std::string_view(token).substr(0, token.rfind('.'));
  for (auto _ : state) {
    auto mac = rc::crypto::hmac_sha256(kSecret, signing_input);
    benchmark::DoNotOptimize(mac);
  }
  state.counters["token_bytes"] = static_cast<double>(token.size());
}
BENCHMARK(BM_VerifyToken_HmacOnly);

// A forged token fails at the MAC, before the payload is parsed.
void BM_VerifyToken_BadSignature(benchmark::State& state) {
  std::string token = typical_token();
  token[token.size() - 10] = token[token.size() - 10] == 'A' ? 'B' : 'A';
  for (auto _ : state) {
    auto result = rc::jwt::verify(token, kSecret, kNow);
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(BM_VerifyToken_BadSignature);

void BM_SignToken(benchmark::State& state) {
  rc::jwt::Claims c;
  c.sub = "student-000042";
  c.name = "Ada Lovelace";
  c.has_name = true;
  c.rooms = {"physics-101", "physics-lab"};
  c.exp_s = kNow + 3600;
  for (auto _ : state) {
    std::string token = rc::jwt::sign(c, kSecret);
    benchmark::DoNotOptimize(token);
  }
}
BENCHMARK(BM_SignToken);

}  // namespace
