// Micro-benchmarks of the JSON hot paths: decoding a client message
// (protocol/json_decode.h) and writing server JSON (protocol/json_writer.h).
// Baselines measured in the same run: BM_DecodePing (the fixed cost of one
// decode) and BM_AppendAscii100 (copying the bytes that BM_EscapeAscii100
// escapes).

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/limits.h"
#include "protocol/json_decode.h"
#include "protocol/json_writer.h"

namespace {

// A message in a receive buffer, followed by the padding the decoder needs.
std::vector<std::uint8_t> padded(std::string_view text) {
  std::vector<std::uint8_t> buf(text.begin(), text.end());
  buf.resize(text.size() + rc::json::Decoder::padding(), 0);
  return buf;
}

void run_decode(benchmark::State& state, std::string_view text) {
  rc::json::Decoder decoder(rc::limits::message_bytes_default);
  const std::vector<std::uint8_t> buf = padded(text);
  rc::msg::ClientMessage msg;
  rc::json::DecodeError err;
  for (auto _ : state) {
    const bool ok = decoder.decode(buf.data(), text.size(), {}, msg, err);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(msg);
    if (!ok) state.SkipWithError(err.message.c_str());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
  state.counters["bytes"] = static_cast<double>(text.size());
}

void BM_DecodePresence100(benchmark::State& state) {
  run_decode(state,
             R"({"type":"presence","x":0.5123,"y":0.25,"emoji":"👍","hand":true,"status":"busy",)"
             R"("status_text":"lab"})");
}
BENCHMARK(BM_DecodePresence100);

void BM_DecodeChat(benchmark::State& state) {
  run_decode(state,
             R"({"type":"chat","text":"Does anyone have the notes from last week's lecture on )"
             R"(entropy? I missed the second half.","client_id":"c-1763798400123"})");
}
BENCHMARK(BM_DecodeChat);

void BM_DecodePing(benchmark::State& state) {
  run_decode(state, R"({"type":"ping"})");
}
BENCHMARK(BM_DecodePing);

// One full member object as in the welcome example (PROTOCOL 3.1), into a
// buffer whose capacity is reused, as a shard does each tick.
void BM_WriteMember(benchmark::State& state) {
  std::string out;
  out.reserve(4096);
  for (auto _ : state) {
    out.clear();
    rc::json::Writer w(out);
    w.begin_object()
        .field("user_id", "u42")
        .field("name", "Ada")
        .field("role", "student")
        .field("x", 0.5)
        .field("y", 0.25)
        .field("emoji", "")
        .field("hand", false)
        .field("hand_at", std::int64_t{0})
        .field("status", "online")
        .field("status_text", "")
        .field("devices", 1)
        .field("connected", true)
        .end_object();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_WriteMember);

const std::string kAscii100 =
    "The quick brown fox jumps over the lazy dog while the class waits for the "
    "bell to ring at ten oclock";

void BM_EscapeAscii100(benchmark::State& state) {
  std::string out;
  out.reserve(256);
  for (auto _ : state) {
    out.clear();
    rc::json::escape_string(kAscii100, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kAscii100.size()));
}
BENCHMARK(BM_EscapeAscii100);

void BM_AppendAscii100(benchmark::State& state) {
  std::string out;
  out.reserve(256);
  for (auto _ : state) {
    out.clear();
    out.push_back('"');
    out.append(kAscii100);
    out.push_back('"');
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kAscii100.size()));
}
BENCHMARK(BM_AppendAscii100);

}  // namespace
