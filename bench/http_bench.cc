// The cost of accepting one WebSocket upgrade's HTTP head: parse, route, and
// decode the query. The baseline is the least any parser must do: find the
// end of the head. Compare the other lines with it (same run, same machine).

#include <benchmark/benchmark.h>

#include <array>
#include <string>
#include <string_view>

#include "protocol/http.h"
#include "protocol/route.h"

namespace {

// What a browser sends to open a session with a ticket (about 400 bytes).
constexpr std::string_view kUpgradeRequest =
    "GET /ws/rooms/physics-101?ticket=Zm9vYmFyYmF6cXV4cXV1eA HTTP/1.1\r\n"
    "Host: rollcall.school.example\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: https://school.example\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-GB,en;q=0.9\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "\r\n";

constexpr std::array<std::string_view, 3> kAssets = {"index.html", "app.js", "rollcall.js"};

void BM_FindHeadEnd_Baseline(benchmark::State& state) {
  for (auto _ : state) {
    std::string_view bytes = kUpgradeRequest;
    benchmark::DoNotOptimize(bytes);
    benchmark::DoNotOptimize(bytes.find("\r\n\r\n"));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kUpgradeRequest.size()));
}
BENCHMARK(BM_FindHeadEnd_Baseline);

void BM_ParseUpgradeRequest(benchmark::State& state) {
  rc::http::Request req;
  for (auto _ : state) {
    std::string_view bytes = kUpgradeRequest;
    benchmark::DoNotOptimize(bytes);
    const rc::http::ParseResult r = rc::http::parse_request(bytes, req);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(req.head_bytes);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kUpgradeRequest.size()));
  state.counters["head_bytes"] = static_cast<double>(kUpgradeRequest.size());
}
BENCHMARK(BM_ParseUpgradeRequest);

void BM_ParseAndRoute(benchmark::State& state) {
  const std::array<std::string, 1> origins = {"https://school.example"};
  const rc::http::RouteOptions opts{origins};
  rc::http::Request req;
  for (auto _ : state) {
    std::string_view bytes = kUpgradeRequest;
    benchmark::DoNotOptimize(bytes);
    rc::http::parse_request(bytes, req);
    const rc::http::Routed routed = rc::http::route(req, opts, kAssets);
    benchmark::DoNotOptimize(routed.room);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kUpgradeRequest.size()));
}
BENCHMARK(BM_ParseAndRoute);

void BM_ParseUpgradeQuery(benchmark::State& state) {
  constexpr std::string_view query = "user_id=u42&name=Ada+Lovelace&since=1234";
  for (auto _ : state) {
    auto q = rc::http::parse_upgrade_query(query);
    benchmark::DoNotOptimize(q);
  }
}
BENCHMARK(BM_ParseUpgradeQuery);

}  // namespace
