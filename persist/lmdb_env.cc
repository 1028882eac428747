#include "persist/lmdb_env.h"

#include <fmt/format.h>
#include <lmdb.h>

#include <utility>

namespace rc::persist::db {
namespace {

MDB_val val_of(std::string_view s) {
  // LMDB never writes through mv_data of an input value.
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

std::string_view view_of(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

Status lmdb_error(std::string_view what, int rc) {
  return Status::error(fmt::format("LMDB {}: {}", what, mdb_strerror(rc)));
}

}  // namespace

// ---- Txn

Txn::Txn(Txn&& other) noexcept
    : txn_(std::exchange(other.txn_, nullptr)),
      dbi_(other.dbi_),
      read_only_(other.read_only_),
      map_full_(other.map_full_) {}

Txn& Txn::operator=(Txn&& other) noexcept {
  if (this != &other) {
    abort();
    txn_ = std::exchange(other.txn_, nullptr);
    dbi_ = other.dbi_;
    read_only_ = other.read_only_;
    map_full_ = other.map_full_;
  }
  return *this;
}

Txn::~Txn() {
  abort();
}

Status Txn::fail(const char* what, int rc) {
  map_full_ = rc == MDB_MAP_FULL;
  return lmdb_error(what, rc);
}

Result<std::optional<std::string_view>> Txn::get(std::string_view key) {
  RC_ASSERT(txn_ != nullptr);
  MDB_val k = val_of(key), v{};
  const int rc = mdb_get(txn_, dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
  if (rc != 0) return fail("get", rc);
  return std::optional<std::string_view>(view_of(v));
}

Status Txn::put(std::string_view key, std::string_view value, PutMode mode) {
  RC_ASSERT(txn_ != nullptr && !read_only_);
  MDB_val k = val_of(key), v = val_of(value);
  unsigned flags = 0;
  if (mode == PutMode::kInsert) flags = MDB_NOOVERWRITE;
  if (mode == PutMode::kAppend) flags = MDB_APPEND;
  const int rc = mdb_put(txn_, dbi_, &k, &v, flags);
  if (rc != 0) return fail("put", rc);
  return Status::ok();
}

Result<bool> Txn::del(std::string_view key) {
  RC_ASSERT(txn_ != nullptr && !read_only_);
  MDB_val k = val_of(key);
  const int rc = mdb_del(txn_, dbi_, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return fail("del", rc);
  return true;
}

Status Txn::commit() {
  RC_ASSERT(txn_ != nullptr);
  // mdb_txn_commit frees the transaction whatever it returns.
  const int rc = mdb_txn_commit(std::exchange(txn_, nullptr));
  if (rc != 0) return fail("commit", rc);
  return Status::ok();
}

void Txn::abort() {
  if (txn_ != nullptr) mdb_txn_abort(std::exchange(txn_, nullptr));
}

Result<Cursor> Txn::cursor() {
  RC_ASSERT(txn_ != nullptr);
  MDB_cursor* c = nullptr;
  const int rc = mdb_cursor_open(txn_, dbi_, &c);
  if (rc != 0) return fail("cursor open", rc);
  return Cursor(c);
}

// ---- Cursor

Cursor::Cursor(Cursor&& other) noexcept
    : cursor_(std::exchange(other.cursor_, nullptr)),
      key_(other.key_),
      value_(other.value_),
      status_(std::move(other.status_)) {}

Cursor& Cursor::operator=(Cursor&& other) noexcept {
  if (this != &other) {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
    cursor_ = std::exchange(other.cursor_, nullptr);
    key_ = other.key_;
    value_ = other.value_;
    status_ = std::move(other.status_);
  }
  return *this;
}

Cursor::~Cursor() {
  if (cursor_ != nullptr) mdb_cursor_close(cursor_);
}

bool Cursor::move(int op, std::string_view seek_key) {
  RC_ASSERT(cursor_ != nullptr);
  MDB_val k = val_of(seek_key), v{};
  const int rc = mdb_cursor_get(cursor_, &k, &v, static_cast<MDB_cursor_op>(op));
  if (rc == 0) {
    key_ = view_of(k);
    value_ = view_of(v);
    return true;
  }
  key_ = value_ = {};
  if (rc != MDB_NOTFOUND) status_ = lmdb_error("cursor get", rc);
  return false;
}

bool Cursor::seek(std::string_view key) {
  return move(MDB_SET_RANGE, key);
}
bool Cursor::first() {
  return move(MDB_FIRST);
}
bool Cursor::last() {
  return move(MDB_LAST);
}
bool Cursor::next() {
  return move(MDB_NEXT);
}
bool Cursor::prev() {
  return move(MDB_PREV);
}

// ---- Env

Env::Env(MDB_env* env, unsigned dbi, std::string dir)
    : env_(env), dbi_(dbi), dir_(std::move(dir)) {}

Env::~Env() {
  if (env_ != nullptr) mdb_env_close(env_);
}

Result<std::unique_ptr<Env>> Env::open(const std::string& dir, const EnvOptions& options) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return lmdb_error("env create", rc);
  // From here on the env must be closed on every failure path.
  auto fail = [&](std::string_view what, int code) {
    mdb_env_close(env);
    return lmdb_error(fmt::format("{} ({})", what, dir), code);
  };
  rc = mdb_env_set_mapsize(env, options.map_bytes);
  if (rc != 0) return fail("set map size", rc);
  // NOTLS: transactions are begun by whichever thread owns the log (open()
  // on main, later the persistence thread); tying read slots to threads would
  // leak a slot per thread. NORDAHEAD: reads touch a few pages of a large
  // map at random; read-ahead would only evict useful pages.
  unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
  if (options.read_only) flags |= MDB_RDONLY;
  rc = mdb_env_open(env, dir.c_str(), flags, 0600);
  if (rc != 0) return fail("open", rc);
  // A process killed while reading leaves its reader slot behind; a stale
  // slot would pin old pages forever and make the file grow.
  int dead = 0;
  mdb_reader_check(env, &dead);

  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return fail("begin", rc);
  MDB_dbi dbi = 0;
  rc = mdb_dbi_open(txn, nullptr, 0, &dbi);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return fail("open database", rc);
  }
  // The handle of the main database stays valid for the env's lifetime
  // once the transaction that opened it ends.
  mdb_txn_abort(txn);
  return std::unique_ptr<Env>(new Env(env, dbi, dir));
}

Result<Txn> Env::begin(bool write) {
  MDB_txn* txn = nullptr;
  const int rc = mdb_txn_begin(env_, nullptr, write ? 0 : MDB_RDONLY, &txn);
  if (rc != 0) {
    Txn failed(nullptr, dbi_, !write);
    return failed.fail("begin", rc);
  }
  return Txn(txn, dbi_, !write);
}

Result<Txn> Env::begin_read() {
  return begin(false);
}
Result<Txn> Env::begin_write() {
  return begin(true);
}

Status Env::copy_compact(const std::string& out_dir) {
  const int rc = mdb_env_copy2(env_, out_dir.c_str(), MDB_CP_COMPACT);
  if (rc != 0) return lmdb_error(fmt::format("compact copy to {}", out_dir), rc);
  return Status::ok();
}

std::size_t Env::map_bytes() const {
  MDB_envinfo info{};
  mdb_env_info(env_, &info);
  return info.me_mapsize;
}

std::size_t Env::used_bytes() const {
  MDB_envinfo info{};
  MDB_stat stat{};
  mdb_env_info(env_, &info);
  mdb_env_stat(env_, &stat);
  return (info.me_last_pgno + 1) * stat.ms_psize;
}

}  // namespace rc::persist::db
