// Micro-benchmarks of the WebSocket codec's hot paths (protocol/ws.h) on the
// typical rollcall message: a ~100-byte text frame.
//
// decode_frame unmasks in place, so each iteration first restores the masked
// bytes from a pristine copy; BM_Memcpy100 measures that restore alone, so
// the codec's own cost is BM_DecodeUnmask100 minus BM_Memcpy100 (the same
// holds for BM_MessageReader100).

#include <benchmark/benchmark.h>

#include <array>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/ws.h"

namespace {

constexpr std::size_t kPayloadBytes = 100;
constexpr std::size_t kPadding = 64;  // like the JSON parser's padding

// A masked client text frame carrying 100 bytes of presence-like JSON.
std::vector<std::uint8_t> masked_text_frame() {
  std::string json =
      "{\"type\":\"presence\",\"x\":0.4321,\"y\":0.8765,\"emoji\":\"\xF0\x9F\x91\x8D\","
      "\"hand\":true,\"status\":\"busy\"}";
  json.resize(kPayloadBytes, ' ');
  const std::array<std::uint8_t, 4> key = {0x37, 0xfa, 0x21, 0x3d};
  std::vector<std::uint8_t> frame = {
      0x81, static_cast<std::uint8_t>(0x80 | kPayloadBytes), key[0], key[1], key[2], key[3]};
  for (std::size_t i = 0; i < json.size(); ++i) {
    frame.push_back(static_cast<std::uint8_t>(json[i]) ^ key[i % 4]);
  }
  return frame;
}

struct NoOpSink {
  std::size_t texts = 0;
  void on_text(std::uint8_t* data, std::size_t n) {
    benchmark::DoNotOptimize(data);
    texts += n != 0;
  }
  void on_ping(std::string_view) {}
  void on_pong(std::string_view) {}
  void on_close(std::uint16_t, std::string_view) {}
  void on_error(std::uint16_t, std::string_view) {}
};

void BM_Memcpy100(benchmark::State& state) {
  const std::vector<std::uint8_t> pristine = masked_text_frame();
  std::vector<std::uint8_t> work(pristine.size() + kPadding);
  for (auto _ : state) {
    std::memcpy(work.data(), pristine.data(), pristine.size());
    benchmark::DoNotOptimize(work.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * pristine.size()));
}
BENCHMARK(BM_Memcpy100);

void BM_DecodeUnmask100(benchmark::State& state) {
  const std::vector<std::uint8_t> pristine = masked_text_frame();
  std::vector<std::uint8_t> work(pristine.size() + kPadding);
  for (auto _ : state) {
    std::memcpy(work.data(), pristine.data(), pristine.size());
    const rc::ws::Decoded d = rc::ws::decode_frame(work.data(), pristine.size(), 8192);
    benchmark::DoNotOptimize(d);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * pristine.size()));
}
BENCHMARK(BM_DecodeUnmask100);

void BM_MessageReader100(benchmark::State& state) {
  const std::vector<std::uint8_t> pristine = masked_text_frame();
  std::vector<std::uint8_t> work(pristine.size() + kPadding);
  rc::ws::MessageReader reader(8192, kPadding);
  NoOpSink sink;
  for (auto _ : state) {
    std::memcpy(work.data(), pristine.data(), pristine.size());
    const std::size_t consumed = reader.feed(work.data(), pristine.size(), sink);
    benchmark::DoNotOptimize(consumed);
    benchmark::ClobberMemory();
  }
  if (sink.texts != static_cast<std::size_t>(state.iterations()))
    state.SkipWithError("the reader rejected the frame");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * pristine.size()));
}
BENCHMARK(BM_MessageReader100);

void BM_ServerHeader(benchmark::State& state) {
  std::uint8_t out[rc::ws::kServerHeaderBytesMax];
  std::size_t payload_bytes = kPayloadBytes;
  for (auto _ : state) {
    benchmark::DoNotOptimize(payload_bytes);
    const std::size_t n = rc::ws::write_server_header(out, rc::ws::kText, payload_bytes);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_ServerHeader);

void BM_BuildFrame100(benchmark::State& state) {
  const std::string payload(kPayloadBytes, 'j');
  std::vector<std::uint8_t> out(rc::ws::kServerHeaderBytesMax + kPayloadBytes);
  for (auto _ : state) {
    const std::size_t header =
        rc::ws::write_server_header(out.data(), rc::ws::kText, payload.size());
    std::memcpy(out.data() + header, payload.data(), payload.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * payload.size()));
}
BENCHMARK(BM_BuildFrame100);

}  // namespace
