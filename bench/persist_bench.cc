// Costs of the chat log (persist/): the group commit, the record seal and
// open, a history page, and the whole writer round trip.
//
// BM_AppendBatch/N writes N records of about 150 bytes (sealed with
// AES-256-GCM) in one LMDB write transaction and commits it, fsync included:
// the per-message cost of a group commit of N. Its ratio against /1 is what
// group commit buys. BM_AppendBatchRooms spreads the batch over 64 rooms, so
// most keys land inside the tree (plain puts) instead of at its end
// (MDB_APPEND). BM_WriterRoundTrip/N pushes N appends through the real
// LogWriter and waits until every one is delivered as committed.
//
// The benchmarks write into fresh directories under $TMPDIR; the disk's
// fsync latency dominates the commit benchmarks, so compare them with each
// other within one run, not across machines.

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "persist/log_store.h"
#include "persist/log_writer.h"
#include "persist/record.h"

namespace {

using namespace rc::persist;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "rc-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

constexpr std::size_t kMapBytes = std::size_t{4} << 30;

// Every benchmark opens a fresh log, which logs that it created a key.
const bool kQuiet = [] {
  rc::log::set_level(rc::LogLevel::kWarn);
  return true;
}();

// A typical chat message: its record value is about 150 bytes.
ChatMessage typical_message(std::uint64_t seq) {
  ChatMessage m;
  m.seq = seq;
  m.ts_ms = 1763798400000 + static_cast<std::int64_t>(seq);
  m.user_id = "student-000042";
  m.name = "Ada Lovelace";
  m.text = "Could you go over the last step again? I did not get where the 2 went.";
  m.client_id = "c-1763798400";
  return m;
}

std::unique_ptr<LogStore> open_store(const std::string& dir) {
  StoreOptions o;
  o.data_dir = dir;
  o.map_bytes = kMapBytes;
  auto store = LogStore::open(o);
  if (!store) std::abort();
  return std::move(*store);
}

void append_batches(benchmark::State& state, std::size_t rooms_in_batch) {
  TempDir dir;
  auto store = open_store(dir.path());
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<std::string> rooms;
  for (std::size_t r = 0; r < rooms_in_batch; ++r)
    rooms.push_back(std::string("room-").append(std::to_string(r)));
  std::vector<std::uint64_t> last_seq(rooms_in_batch, 0);
  std::vector<ChatMessage> msgs(n);
  std::vector<NewRecord> records(n);
  for (auto _ : state) {
    // One room's records come in seq order; the rooms, in key order.
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t r = i * rooms_in_batch / n;
      msgs[i] = typical_message(++last_seq[r]);
      records[i] = NewRecord{rooms[r], &msgs[i]};
    }
    WriteOutcome w = store->write(records, {});
    if (!w.status.is_ok()) {
      state.SkipWithError(w.status.message().c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

void BM_AppendBatch(benchmark::State& state) {
  append_batches(state, 1);
}
BENCHMARK(BM_AppendBatch)->Arg(1)->Arg(100)->Arg(1000)->UseRealTime();

void BM_AppendBatchRooms(benchmark::State& state) {
  append_batches(state, 64);
}
BENCHMARK(BM_AppendBatchRooms)->Arg(1000)->UseRealTime();

void BM_Seal150(benchmark::State& state) {
  auto cipher = RecordCipher::create(std::string(32, 'k'));
  const ChatMessage m = typical_message(17);
  const RecordKey key("physics-101", m.seq);
  std::string value;
  cipher->seal(key.view(), m, value);
  state.counters["record_bytes"] = static_cast<double>(value.size());
  for (auto _ : state) {
    cipher->seal(key.view(), m, value);
    benchmark::DoNotOptimize(value.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_Seal150);

void BM_Open150(benchmark::State& state) {
  auto cipher = RecordCipher::create(std::string(32, 'k'));
  const ChatMessage m = typical_message(17);
  const RecordKey key("physics-101", m.seq);
  std::string value;
  cipher->seal(key.view(), m, value);
  ChatMessage out;
  for (auto _ : state) {
    const OpenError err = cipher->open(key.view(), value, out);
    benchmark::DoNotOptimize(err);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_Open150);

// The newest 50 of a room of 10,000 (a history page, decrypted).
void BM_ReadPage50(benchmark::State& state) {
  TempDir dir;
  auto store = open_store(dir.path());
  std::vector<ChatMessage> msgs;
  for (std::uint64_t s = 1; s <= 10000; ++s) msgs.push_back(typical_message(s));
  std::vector<NewRecord> records;
  for (const auto& m : msgs) records.push_back(NewRecord{"physics-101", &m});
  if (!store->write(records, {}).status.is_ok()) std::abort();
  for (auto _ : state) {
    auto reader = store->reader();
    auto page = reader->page("physics-101", 0, 0, 50);
    benchmark::DoNotOptimize(page->messages.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * 50));
}
BENCHMARK(BM_ReadPage50);

// N appends through the real writer thread, until all are delivered.
void BM_WriterRoundTrip(benchmark::State& state) {
  TempDir dir;
  std::atomic<std::uint64_t> delivered{0};
  LogOptions o;
  o.data_dir = dir.path();
  o.map_bytes = kMapBytes;
  auto log = LogWriter::open(o, [&](std::uint32_t, std::unique_ptr<LogReply>&& reply) {
    std::uint64_t n = 0;
    for (const auto& c : reply->committed) n += c.messages.size();
    delivered.fetch_add(n, std::memory_order_release);
    delivered.notify_one();
    return true;
  });
  if (!log) std::abort();
  (*log)->start();
  const auto n = static_cast<std::uint64_t>(state.range(0));
  std::uint64_t sent = 0;
  for (auto _ : state) {
    for (std::uint64_t i = 0; i < n; ++i) {
      // A refused request is gone: build it again for the retry.
      while (!(*log)->append(0, AppendRequest{"physics-101", typical_message(0), i})) {
        std::this_thread::yield();
      }
    }
    sent += n;
    for (std::uint64_t d; (d = delivered.load(std::memory_order_acquire)) < sent;) {
      delivered.wait(d, std::memory_order_acquire);
    }
  }
  (*log)->stop();
  state.counters["commits_per_iteration"] = benchmark::Counter(
      static_cast<double>((*log)->stats().commits.get()) / static_cast<double>(state.iterations()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(BM_WriterRoundTrip)->Arg(1)->Arg(100)->Arg(1000)->UseRealTime();

}  // namespace
