// The whole inbound hot path for one small message: a masked 100-byte text
// frame is decoded and unmasked in place, its UTF-8 checked, and its JSON
// decoded into a validated presence update -- what a shard does per message.
// BM_CopyFrame is the same-run baseline (restoring the masked bytes, which
// every iteration of the others also pays).

#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/limits.h"
#include "protocol/json_decode.h"
#include "protocol/ws.h"

namespace {

std::vector<std::uint8_t> masked_frame(const std::string& payload) {
  const std::uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  std::vector<std::uint8_t> f(6 + payload.size());
  f[0] = 0x81;
  f[1] = static_cast<std::uint8_t>(0x80 | payload.size());
  for (std::size_t i = 0; i < 4; ++i) f[2 + i] = key[i];
  for (std::size_t i = 0; i < payload.size(); ++i) {
    f[6 + i] = static_cast<std::uint8_t>(payload[i] ^ key[i % 4]);
  }
  return f;
}

const std::string kPresence =
    R"({"type":"presence","x":0.5123,"y":0.25,"emoji":"\u00f0","hand":true,"status":"busy","status_text":"lab"})";

struct Sink {
  rc::json::Decoder* decoder;
  rc::msg::ClientMessage msg;
  rc::json::DecodeError err;
  bool ok = false;
  void on_text(std::uint8_t* data, std::size_t len) { ok = decoder->decode(data, len, {}, msg, err); }
  void on_ping(std::string_view) {}
  void on_pong(std::string_view) {}
  void on_close(std::uint16_t, std::string_view) {}
  void on_error(std::uint16_t, std::string_view) {}
};

void BM_CopyFrame(benchmark::State& state) {
  const std::vector<std::uint8_t> pristine = masked_frame(kPresence);
  std::vector<std::uint8_t> buf(pristine.size() + rc::limits::read_padding_bytes);
  for (auto _ : state) {
    std::memcpy(buf.data(), pristine.data(), pristine.size());
    benchmark::DoNotOptimize(buf.data());
  }
}
BENCHMARK(BM_CopyFrame);

void BM_FrameToPresence100(benchmark::State& state) {
  const std::vector<std::uint8_t> pristine = masked_frame(kPresence);
  std::vector<std::uint8_t> buf(pristine.size() + rc::limits::read_padding_bytes);
  rc::json::Decoder decoder(rc::limits::message_bytes_default);
  rc::ws::MessageReader reader(rc::limits::message_bytes_default, rc::limits::read_padding_bytes);
  Sink sink{&decoder};
  for (auto _ : state) {
    std::memcpy(buf.data(), pristine.data(), pristine.size());
    std::size_t used = reader.feed(buf.data(), pristine.size(), sink);
    if (used != pristine.size() || !sink.ok) state.SkipWithError("the message did not decode");
    benchmark::DoNotOptimize(sink.msg.presence.x);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * pristine.size()));
  state.counters["payload_bytes"] = static_cast<double>(kPresence.size());
}
BENCHMARK(BM_FrameToPresence100);

}  // namespace
