#include "persist/log_store.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <system_error>

#include "core/log.h"
#include "persist/key_file.h"

namespace rc::persist {
namespace {

// What open() finds in an environment before it knows the key.
struct LogContents {
  std::optional<std::string> key_check;  // the key-check record's value
  bool has_records = false;              // any key at all besides the key check
};

Result<LogContents> inspect(db::Env& env) {
  auto txn = env.begin_read();
  if (!txn) return txn.status();
  LogContents contents;
  auto check = txn->get(kKeyCheckKey);
  if (!check) return check.status();
  if (*check) contents.key_check = std::string(**check);
  auto cursor = txn->cursor();
  if (!cursor) return cursor.status();
  for (bool at = cursor->first(); at; at = cursor->next()) {
    if (cursor->key() != kKeyCheckKey) {
      contents.has_records = true;
      break;
    }
  }
  if (!cursor->status()) return cursor->status();
  return contents;
}

std::string default_key_path(const std::string& data_dir) {
  return (std::filesystem::path(data_dir) / "chat.key").string();
}

// Reads the key file, or creates the default one for a brand-new log.
Result<std::string> load_key(const StoreOptions& options, const LogContents& contents,
                             std::string& key_path, bool& created) {
  created = false;
  if (!options.key_file.empty()) {
    key_path = options.key_file;
    return read_chat_key_file(key_path);
  }
  key_path = default_key_path(options.data_dir);
  std::error_code ec;
  if (std::filesystem::exists(key_path, ec)) return read_chat_key_file(key_path);
  if (options.read_only) {
    return Status::error(fmt::format(
        "no chat key: {} does not exist (give the key file with --chat-key-file)", key_path));
  }
  if (contents.key_check || contents.has_records) {
    // Making up a new key would only produce a log nobody can read.
    return Status::error(fmt::format(
        "the chat log in {} exists but its key file {} is missing; give the key that wrote it "
        "with --chat-key-file",
        options.data_dir, key_path));
  }
  crypto::Random random;
  auto key = create_chat_key_file(key_path, random);
  if (key) created = true;
  return key;
}

Status write_key_check(db::Env& env, RecordCipher& cipher) {
  std::string value;
  cipher.seal_key_check(value);
  auto txn = env.begin_write();
  if (!txn) return txn.status();
  if (Status s = txn->put(kKeyCheckKey, value, db::PutMode::kInsert); !s) return s;
  return txn->commit();
}

// The record key and seq under the cursor if it belongs to `room`.
std::optional<std::uint64_t> seq_in_room(const db::Cursor& cursor, std::string_view room) {
  auto parsed = parse_record_key(cursor.key());
  if (!parsed || parsed->room != room) return std::nullopt;
  return parsed->seq;
}

}  // namespace

// ---- LogStore

Result<std::unique_ptr<LogStore>> LogStore::open(const StoreOptions& options) {
  std::error_code ec;
  const std::string& dir = options.data_dir;
  if (options.read_only) {
    if (!std::filesystem::exists(std::filesystem::path(dir) / "data.mdb", ec)) {
      return Status::error(fmt::format("no chat log in {} (data.mdb not found)", dir));
    }
  } else if (!std::filesystem::create_directories(dir, ec) && ec) {
    return Status::error(fmt::format("cannot create the data directory {}: {}", dir, ec.message()));
  }
  auto env = db::Env::open(dir, db::EnvOptions{options.map_bytes, options.read_only});
  if (!env) return env.status();
  auto contents = inspect(**env);
  if (!contents) return contents.status();

  std::string key_path;
  bool created = false;
  auto key = load_key(options, *contents, key_path, created);
  if (!key) return key.status();
  auto cipher = RecordCipher::create(*key);
  if (!cipher) return cipher.status();

  if (contents->key_check) {
    if (!cipher->key_check_opens(*contents->key_check)) {
      return Status::error(
          fmt::format("the chat key does not open the log in {} (key file {})", dir, key_path));
    }
  } else if (contents->has_records) {
    return Status::error(fmt::format(
        "the chat log in {} has records but no key-check record: it is damaged or not a "
        "rollcall log",
        dir));
  } else if (!options.read_only) {
    if (Status s = write_key_check(**env, *cipher); !s) return s;
  }
  if (created) RC_INFO("created a new chat key in {} (mode 0600); keep it with the log", key_path);

  std::unique_ptr<LogStore> store(new LogStore(std::move(*env), std::move(*cipher), dir));
  store->key_path_ = std::move(key_path);
  store->created_key_ = created;
  if (Status s = store->load_greatest_key(); !s) return s;
  return store;
}

Status LogStore::load_greatest_key() {
  auto txn = env_->begin_read();
  if (!txn) return txn.status();
  auto cursor = txn->cursor();
  if (!cursor) return cursor.status();
  greatest_key_.clear();
  if (cursor->last()) greatest_key_.assign(cursor->key());
  return cursor->status();
}

WriteOutcome LogStore::write(std::span<const NewRecord> records, std::span<const TrimRange> trims) {
  WriteOutcome out;
  auto txn = env_->begin_write();
  if (!txn) {
    out.status = txn.status();
    return out;
  }
  std::string greatest = greatest_key_;
  Status s = put_records(*txn, records, greatest);
  if (s) {
    auto deleted = trim(*txn, trims);
    if (deleted) {
      out.deleted = *deleted;
    } else {
      s = deleted.status();
    }
  }
  if (s) s = txn->commit();
  if (!s) {
    // The Txn aborts on destruction (commit already freed it): nothing of
    // this batch exists, and greatest_key_ still describes the database.
    out.map_full = txn->map_full();
    out.deleted = 0;
    out.status = std::move(s);
    return out;
  }
  greatest_key_ = std::move(greatest);
  return out;
}

// Keys above every stored key go in with MDB_APPEND: LMDB then skips the
// search and fills pages completely instead of splitting them in half. That
// helps the room whose id sorts last; every other room's keys land inside
// the tree and take a plain (no-overwrite) put.
Status LogStore::put_records(db::Txn& txn, std::span<const NewRecord> records,
                             std::string& greatest) {
  for (const NewRecord& r : records) {
    const RecordKey key(r.room, r.msg->seq);
    cipher_.seal(key.view(), *r.msg, value_);
    const bool above_all = key.view() > std::string_view(greatest);
    const auto mode = above_all ? db::PutMode::kAppend : db::PutMode::kInsert;
    if (Status s = txn.put(key.view(), value_, mode); !s) return s;
    if (above_all) greatest.assign(key.view());
  }
  return Status::ok();
}

Result<std::uint64_t> LogStore::trim(db::Txn& txn, std::span<const TrimRange> trims) {
  std::uint64_t deleted = 0;
  for (const TrimRange& t : trims) {
    for (std::uint64_t seq = t.first_seq; seq <= t.last_seq && seq != 0; ++seq) {
      auto gone = txn.del(RecordKey(t.room, seq).view());
      if (!gone) return gone.status();
      if (*gone) ++deleted;
    }
  }
  return deleted;
}

Result<Reader> LogStore::reader() {
  auto txn = env_->begin_read();
  if (!txn) return txn.status();
  return Reader(*this, std::move(*txn));
}

// ---- Reader

OpenError Reader::open_record(std::string_view key, std::string_view value, std::uint64_t seq,
                              ChatMessage& msg) {
  const OpenError err = store_->cipher_.open(key, value, msg);
  msg.seq = seq;
  if (err != OpenError::kNone) {
    ++store_->undecryptable_;
    const auto parsed = parse_record_key(key);
    RC_ERROR("chat log {}: record {}/{} left out: {}", store_->data_dir_,
             parsed ? parsed->room : std::string_view("?"), seq, open_error_text(err));
  }
  return err;
}

Result<std::vector<RoomBounds>> Reader::rooms() {
  auto cursor = txn_.cursor();
  if (!cursor) return cursor.status();
  std::vector<RoomBounds> out;
  // Meta keys start with 0x01; every room key starts above it.
  bool at = cursor->seek(std::string_view("\x02", 1));
  while (at) {
    auto parsed = parse_record_key(cursor->key());
    if (!parsed) {
      RC_WARN("chat log {}: skipping a key that is not a message key", store_->data_dir_);
      at = cursor->next();
      continue;
    }
    RoomBounds b{std::string(parsed->room), parsed->seq, parsed->seq};
    // Jump past the room, step back onto its last record, and forward again
    // onto the next room's first record.
    const std::string end = room_end_key(b.room);
    const bool more = cursor->seek(end);
    if (more ? cursor->prev() : cursor->last()) {
      if (auto last = seq_in_room(*cursor, b.room)) b.last_seq = *last;
    }
    out.push_back(std::move(b));
    at = more && cursor->seek(end);
  }
  if (!cursor->status()) return cursor->status();
  return out;
}

Result<RoomBounds> Reader::bounds(std::string_view room) {
  auto cursor = txn_.cursor();
  if (!cursor) return cursor.status();
  RoomBounds b{std::string(room), 0, 0};
  if (cursor->seek(RecordKey(room, 0).view())) {
    if (auto first = seq_in_room(*cursor, room)) {
      b.first_seq = *first;
      const bool more = cursor->seek(room_end_key(room));
      if (more ? cursor->prev() : cursor->last()) {
        if (auto last = seq_in_room(*cursor, room)) b.last_seq = *last;
      }
    }
  }
  if (!cursor->status()) return cursor->status();
  return b;
}

Result<Page> Reader::page(std::string_view room, std::uint64_t after, std::uint64_t before,
                          std::uint32_t limit) {
  auto cursor = txn_.cursor();
  if (!cursor) return cursor.status();
  Page page;
  // Stand on the newest record below the upper bound, then walk back.
  const bool found =
      before == 0 ? cursor->seek(room_end_key(room)) : cursor->seek(RecordKey(room, before).view());
  bool at = found ? cursor->prev() : (cursor->status() && cursor->last());
  ChatMessage msg;
  while (at) {
    const auto seq = seq_in_room(*cursor, room);
    if (!seq || *seq <= after) break;
    if (page.messages.size() >= limit) {
      page.complete = false;
      break;
    }
    if (open_record(cursor->key(), cursor->value(), *seq, msg) == OpenError::kNone) {
      page.messages.push_back(std::move(msg));
      msg = ChatMessage{};
    } else {
      ++page.undecryptable;
    }
    at = cursor->prev();
  }
  if (!cursor->status()) return cursor->status();
  std::reverse(page.messages.begin(), page.messages.end());
  return page;
}

Status Reader::scan(std::string_view room, std::uint64_t after, const Visit& visit) {
  if (after == UINT64_MAX) return Status::ok();
  auto cursor = txn_.cursor();
  if (!cursor) return cursor.status();
  ChatMessage msg;
  for (bool at = cursor->seek(RecordKey(room, after + 1).view()); at; at = cursor->next()) {
    const auto seq = seq_in_room(*cursor, room);
    if (!seq) break;
    const OpenError err = open_record(cursor->key(), cursor->value(), *seq, msg);
    if (!visit(*seq, err, msg)) break;
  }
  return cursor->status();
}

Result<std::uint64_t> Reader::count(std::string_view room) {
  auto cursor = txn_.cursor();
  if (!cursor) return cursor.status();
  std::uint64_t n = 0;
  for (bool at = cursor->seek(RecordKey(room, 0).view()); at && seq_in_room(*cursor, room);
       at = cursor->next()) {
    ++n;
  }
  if (!cursor->status()) return cursor->status();
  return n;
}

}  // namespace rc::persist
