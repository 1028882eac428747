#pragma once
// A thin wrapper over LMDB: the only file that includes lmdb.h. The chat log
// uses one unnamed database in one environment directory (data.mdb and
// lock.mdb); keys and values are byte strings.
//
// Contract
// - Errors are values: every LMDB failure becomes a Status whose message
//   names the operation and LMDB's text for the code. Txn::map_full() tells
//   a full map (MDB_MAP_FULL) apart from other failures.
// - The environment is opened without MDB_NOSYNC / MDB_NOMETASYNC: a
//   committed write transaction has been written and fdatasync'ed.
// - MDB_NOTLS: a transaction is not tied to the thread that began it, but a
//   transaction (and its cursors) must only be used by one thread at a time.
//   Only one write transaction exists at a time per environment; LMDB makes a
//   second one (also in another process) wait for the first.
// - Never open the same directory twice in one process (LMDB's rule: its
//   locks are per process). Other processes may read while one writes.
// - Views (std::string_view) returned by get() and cursors point into the
//   map: valid until the transaction ends or, in a write transaction, until
//   the next write.
// - A Txn that is destroyed without commit() is aborted.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

// LMDB's handle types, declared here so that lmdb.h stays inside lmdb_env.cc.
struct MDB_env;
struct MDB_txn;
struct MDB_cursor;

namespace rc::persist::db {

struct EnvOptions {
  std::size_t map_bytes = std::size_t{1} << 30;  // the most bytes the database may hold
  bool read_only = false;                        // MDB_RDONLY: the tool's read-only commands
};

class Cursor;

enum class PutMode : std::uint8_t {
  kOverwrite,  // plain put: inserts or replaces
  kInsert,     // MDB_NOOVERWRITE: fails (MDB_KEYEXIST) when the key exists
  kAppend,     // MDB_APPEND: fails unless the key is greater than every key in the database
};

class Txn {
 public:
  Txn(Txn&& other) noexcept;
  Txn& operator=(Txn&& other) noexcept;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn();  // aborts a transaction still open

  bool read_only() const { return read_only_; }

  // The value stored under key, nullopt when there is none.
  Result<std::optional<std::string_view>> get(std::string_view key);
  Status put(std::string_view key, std::string_view value, PutMode mode = PutMode::kOverwrite);
  // Deletes key; a missing key is not an error (returns false).
  Result<bool> del(std::string_view key);
  // Commits (write transactions: writes and syncs the data). The Txn is
  // finished afterwards, whatever the outcome.
  Status commit();
  void abort();
  Result<Cursor> cursor();

  // True when the last failure of this transaction was MDB_MAP_FULL.
  bool map_full() const { return map_full_; }

 private:
  friend class Env;
  Txn(MDB_txn* txn, unsigned dbi, bool read_only) : txn_(txn), dbi_(dbi), read_only_(read_only) {}
  Status fail(const char* what, int rc);

  MDB_txn* txn_ = nullptr;
  unsigned dbi_ = 0;
  bool read_only_ = true;
  bool map_full_ = false;
};

// A position in the database, in key order. Moves return false when there is
// no such entry or an error happened; status() tells which (check it after a
// loop that ended with false). A Cursor must not outlive its Txn.
class Cursor {
 public:
  Cursor(Cursor&& other) noexcept;
  Cursor& operator=(Cursor&& other) noexcept;
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  ~Cursor();

  bool seek(std::string_view key);  // first entry with a key >= key
  bool first();
  bool last();
  bool next();
  bool prev();

  // The current entry (valid after a move that returned true).
  std::string_view key() const { return key_; }
  std::string_view value() const { return value_; }
  const Status& status() const { return status_; }

 private:
  friend class Txn;
  explicit Cursor(MDB_cursor* cursor) : cursor_(cursor) {}
  bool move(int op, std::string_view seek_key = {});

  MDB_cursor* cursor_ = nullptr;
  std::string_view key_, value_;
  Status status_;
};

class Env {
 public:
  // Opens the environment in `dir` (which must exist). Read-write mode
  // creates data.mdb when missing; read-only mode fails when it is missing.
  // Reader slots left by dead processes (a kill -9) are cleared.
  static Result<std::unique_ptr<Env>> open(const std::string& dir, const EnvOptions& options);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  Result<Txn> begin_read();
  Result<Txn> begin_write();

  // Copies the database into out_dir (an existing empty directory) with
  // MDB_CP_COMPACT: free pages are left out and keys are stored in order.
  // Runs in a read transaction, so it works while another process writes.
  Status copy_compact(const std::string& out_dir);

  // Size of the map (bytes) and of the part of it in use (last page + 1).
  std::size_t map_bytes() const;
  std::size_t used_bytes() const;

  const std::string& dir() const { return dir_; }

 private:
  Env(MDB_env* env, unsigned dbi, std::string dir);
  Result<Txn> begin(bool write);

  MDB_env* env_ = nullptr;
  unsigned dbi_ = 0;
  std::string dir_;
};

}  // namespace rc::persist::db
