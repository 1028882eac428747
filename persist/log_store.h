#pragma once
// The chat log on disk, used synchronously: opening the LMDB environment
// with its key, one write transaction per group commit, and reads. The
// writer thread (log_writer.h) and the operator tool (tools/rollcall-log)
// are its only users; nothing here may run on a shard thread.
//
// Contract
// - Not thread-safe: a LogStore and its Readers are used by one thread at a
//   time (the writer thread hands it over by starting).
// - open() in read-write mode creates the data directory, the key file
//   (when no key file is given and the log is new: <data_dir>/chat.key,
//   logged with RC_INFO) and the key-check record. In read-only mode it
//   creates nothing and fails when there is no log.
// - open() fails (Status) for: an unreadable or malformed key file; a key
//   that does not open the existing log ("the chat key does not open the log
//   in DIR"); an existing log whose default key file is missing; LMDB errors.
// - write() is all or nothing: on failure nothing of it is stored and the
//   store is unchanged (the transaction is aborted).
// - Reads never return a record that does not decrypt: it is left out,
//   counted and logged with RC_ERROR.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "persist/chat_log.h"
#include "persist/limits.h"
#include "persist/lmdb_env.h"
#include "persist/record.h"

namespace rc::persist {

struct StoreOptions {
  std::string data_dir;
  std::string key_file;  // empty: <data_dir>/chat.key
  std::size_t map_bytes = limits::map_bytes_default;
  bool read_only = false;
};

// The retained seq range of one room; both 0 when it holds no message.
struct RoomBounds {
  std::string room;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
};

// A message to store under (room, msg.seq).
struct NewRecord {
  std::string_view room;
  const ChatMessage* msg = nullptr;
};

// Delete the messages of `room` with first_seq <= seq <= last_seq.
struct TrimRange {
  std::string_view room;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
};

struct WriteOutcome {
  Status status;
  bool map_full = false;      // the failure was MDB_MAP_FULL
  std::uint64_t deleted = 0;  // records removed by the trims (when ok)
};

// Newest-first window of one room, returned ascending.
struct Page {
  std::vector<ChatMessage> messages;
  bool complete = true;             // no older matching record was left out
  std::uint32_t undecryptable = 0;  // records skipped because they did not open
};

class LogStore;

// A read transaction over the log: one consistent snapshot.
class Reader {
 public:
  // Every room with at least one record, in key order.
  Result<std::vector<RoomBounds>> rooms();
  Result<RoomBounds> bounds(std::string_view room);
  // The newest `limit` records with after < seq < before (before 0: no bound).
  Result<Page> page(std::string_view room, std::uint64_t after, std::uint64_t before,
                    std::uint32_t limit);
  // Calls visit for each record of room with seq > after, in seq order,
  // until visit returns false. `error` is kNone when msg is valid.
  using Visit = std::function<bool(std::uint64_t seq, OpenError error, const ChatMessage& msg)>;
  Status scan(std::string_view room, std::uint64_t after, const Visit& visit);
  // Records of room (keys only, nothing decrypted).
  Result<std::uint64_t> count(std::string_view room);

 private:
  friend class LogStore;
  Reader(LogStore& store, db::Txn txn) : store_(&store), txn_(std::move(txn)) {}
  OpenError open_record(std::string_view key, std::string_view value, std::uint64_t seq,
                        ChatMessage& msg);

  LogStore* store_;
  db::Txn txn_;
};

class LogStore {
 public:
  static Result<std::unique_ptr<LogStore>> open(const StoreOptions& options);

  // One write transaction: every record (inserted; MDB_APPEND when its key is
  // above every key stored), then every trim, then commit (fdatasync).
  WriteOutcome write(std::span<const NewRecord> records, std::span<const TrimRange> trims);

  Result<Reader> reader();

  // The path of the key in use and whether open() created it.
  const std::string& key_path() const { return key_path_; }
  bool created_key() const { return created_key_; }
  const std::string& data_dir() const { return data_dir_; }
  db::Env& env() { return *env_; }
  // Records that failed to open in reads so far.
  std::uint64_t undecryptable() const { return undecryptable_; }

 private:
  friend class Reader;
  LogStore(std::unique_ptr<db::Env> env, RecordCipher cipher, std::string data_dir)
      : env_(std::move(env)), cipher_(std::move(cipher)), data_dir_(std::move(data_dir)) {}
  Status load_greatest_key();
  Status put_records(db::Txn& txn, std::span<const NewRecord> records, std::string& greatest);
  Result<std::uint64_t> trim(db::Txn& txn, std::span<const TrimRange> trims);

  std::unique_ptr<db::Env> env_;
  RecordCipher cipher_;
  std::string data_dir_;
  std::string key_path_;
  bool created_key_ = false;
  // The greatest key in the database: a new key above it may use MDB_APPEND.
  std::string greatest_key_;
  std::string value_;  // scratch for sealing
  std::uint64_t undecryptable_ = 0;
};

}  // namespace rc::persist
