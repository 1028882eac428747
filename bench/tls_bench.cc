// Costs of TLS on rollcall's paths (core/tls.h): accepting a connection (one
// full TLS 1.2 handshake) and carrying one typical ~100-byte frame each way.
//
// Both sides run in this process over in-memory buffers, with the client
// from tests/core/tls_test_peer.h. BM_HandshakeServer reports two rates:
// "handshakes/s" for the pair, and "server_handshakes/s" from the CPU time
// spent inside Session::feed alone, which is what a shard pays per new
// connection.
// The Decrypt benchmarks prepare client records in batches outside the
// timed region (each record has its own sequence number, none can be replayed).
// BM_PlainCopy100 is the plaintext baseline for the per-frame costs.

#include <benchmark/benchmark.h>
#include <time.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/tls.h"
#include "tests/core/tls_test_peer.h"

namespace {

using namespace rc::tls;
using namespace rc::tls::test_peer;

// CPU time of the calling thread: the share of one side, unaffected by other
// load on the machine.
std::chrono::nanoseconds thread_cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

const Pem& pem_for(KeyKind kind) {
  static const Pem ec = make_self_signed({.key = KeyKind::kEcP256});
  static const Pem rsa = make_self_signed({.key = KeyKind::kRsa2048});
  return kind == KeyKind::kRsa2048 ? rsa : ec;
}

struct Server {
  std::unique_ptr<ServerContext> ctx;
  std::unique_ptr<ThreadContext> thread;
  explicit Server(const Pem& pem) {
    auto loaded = ServerContext::from_pem(pem.cert, pem.key);
    if (!loaded) throw std::runtime_error(loaded.status().message());
    ctx = std::move(*loaded);
    thread = std::make_unique<ThreadContext>(*ctx);
  }
};

// A handshake driven step by step so the server's share can be timed.
bool handshake(Client& client, Session& session, std::chrono::nanoseconds& server_time) {
  for (int round = 0; round < 16; ++round) {
    const int ret = client.handshake();
    if (ret != 0 && ret != MBEDTLS_ERR_SSL_WANT_READ) return false;
    if (client.done() && session.handshake_done()) return true;
    const auto start = thread_cpu_now();
    const Session::Result r = session.feed(client.to_server.data(), client.to_server.size());
    server_time += thread_cpu_now() - start;
    if (r == Session::Result::kError) return false;
    client.to_server.clear();
    server_to_client(session, client);
  }
  return false;
}

// Arg 0: ECDSA P-256 certificate; arg 1: RSA 2048. X25519 key exchange, AES-128-GCM.
void BM_HandshakeServer(benchmark::State& state) {
  const KeyKind kind = state.range(0) == 0 ? KeyKind::kEcP256 : KeyKind::kRsa2048;
  Server server(pem_for(kind));
  Client client(pem_for(kind).cert, {.verify = false});
  std::chrono::nanoseconds server_time{};
  for (auto _ : state) {
    client.reset();
    Session session(*server.thread);
    if (!handshake(client, session, server_time)) {
      state.SkipWithError("handshake failed");
      break;
    }
  }
  state.SetLabel(kind == KeyKind::kEcP256 ? "ECDSA P-256" : "RSA 2048");
  state.counters["handshakes/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  const double server_s = std::chrono::duration<double>(server_time).count();
  if (server_s > 0) state.counters["server_handshakes/s"] = state.iterations() / server_s;
}
BENCHMARK(BM_HandshakeServer)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// A connected pair: the state every frame benchmark starts from.
struct Connected {
  Server server{pem_for(KeyKind::kEcP256)};
  Client client{pem_for(KeyKind::kEcP256).cert, {.verify = false}};
  Session session{*server.thread};
  Connected() {
    if (!run_handshake(client, session)) throw std::runtime_error("handshake failed");
  }
};

// write_plain of one frame, and the caller taking the record (as the shard
// does when it queues the ciphertext for sending).
void encrypt_frames(benchmark::State& state, std::size_t frame_bytes) {
  Connected pair;
  const std::vector<std::uint8_t> frame(frame_bytes, 'f');
  for (auto _ : state) {
    if (pair.session.write_plain(frame.data(), frame.size()) != Session::Result::kOk) {
      state.SkipWithError("write_plain failed");
      break;
    }
    benchmark::DoNotOptimize(pair.session.pending_output().data());
    pair.session.consumed(pair.session.pending_output().size());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * frame_bytes));
}

// Baseline for the frame benchmarks: what a plaintext connection does with a
// 100-byte frame at most (one copy into an output buffer).
void BM_PlainCopy100(benchmark::State& state) {
  const std::vector<std::uint8_t> frame(100, 'f');
  std::vector<std::uint8_t> out;
  out.reserve(4096);
  for (auto _ : state) {
    out.insert(out.end(), frame.begin(), frame.end());
    benchmark::DoNotOptimize(out.data());
    out.clear();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * frame.size()));
}
BENCHMARK(BM_PlainCopy100);

void BM_EncryptFrame100(benchmark::State& state) {
  encrypt_frames(state, 100);
}
BENCHMARK(BM_EncryptFrame100);

void BM_EncryptFrame16K(benchmark::State& state) {
  encrypt_frames(state, 16384);
}
BENCHMARK(BM_EncryptFrame16K);

// feed() of one client record carrying one frame, then read_plain into a
// fixed buffer (as the shard decrypts into its input buffer).
void decrypt_frames(benchmark::State& state, std::size_t frame_bytes) {
  constexpr std::size_t kBatch = 512;
  Connected pair;
  const std::string frame(frame_bytes, 'f');
  std::vector<std::vector<std::uint8_t>> records(kBatch);
  std::vector<std::uint8_t> plain(frame_bytes);
  std::size_t next = kBatch;
  for (auto _ : state) {
    if (next == kBatch) {
      state.PauseTiming();
      for (auto& record : records) {
        pair.client.write(frame);
        record.swap(pair.client.to_server);
        pair.client.to_server.clear();
      }
      next = 0;
      state.ResumeTiming();
    }
    const auto& record = records[next++];
    std::size_t got = 0;
    pair.session.feed(record.data(), record.size());
    if (pair.session.read_plain(plain.data(), plain.size(), got) != Session::Result::kOk ||
        got != frame_bytes) {
      state.SkipWithError("read_plain failed");
      break;
    }
    benchmark::DoNotOptimize(plain.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * frame_bytes));
}

void BM_DecryptFrame100(benchmark::State& state) {
  decrypt_frames(state, 100);
}
BENCHMARK(BM_DecryptFrame100);

void BM_DecryptFrame16K(benchmark::State& state) {
  decrypt_frames(state, 16384);
}
BENCHMARK(BM_DecryptFrame16K);

}  // namespace
