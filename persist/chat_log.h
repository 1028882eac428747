#pragma once
// The chat log as rooms/ sees it: non-blocking requests from a shard thread,
// answers delivered back to that shard in batches (PROTOCOL.md section 5).
//
// Contract
// - append(), open() and read() may be called from any thread, never block
//   and never touch the disk. They return false when the log's inbox is full
//   or the log is stopping; the request is then dropped and nothing will be
//   delivered for it.
// - Every accepted request gets exactly one answer, in a LogReply delivered
//   to the shard named in the call: an append gets a Committed entry (its
//   message with its seq, once durable) or an AppendFailed; an open gets an
//   Opened; a read gets a ReadResult.
// - A message is delivered in Committed only after the transaction holding
//   it has been committed and synced to disk. Within one room, Committed
//   entries arrive in seq order, across replies too.
// - Opens and reads in a reply see every commit of that reply and of the
//   replies before it (apply `committed` and `failed` first).
// - Room ids are 1-64 bytes of [A-Za-z0-9_-] (PROTOCOL.md section 1); any
//   other id is a programmer error.
// - The implementation is persist/log_writer.h; tests of rooms/ may use a
//   fake that follows the same contract.

#include <cstdint>
#include <string>
#include <vector>

namespace rc::persist {

// One committed message.
struct ChatMessage {
  std::uint64_t seq = 0;   // per room, from 1, +1 each, never reused
  std::int64_t ts_ms = 0;  // wall clock ms, set by the shard when it accepted the message
  std::string user_id, name, text, client_id;  // client_id may be empty (= none)
};

// ---- requests, shard -> log

// Stores msg (its seq is ignored: the log assigns the next one of the room).
// `ref` comes back unchanged in Committed::refs or AppendFailed::ref.
struct AppendRequest {
  std::string room;
  ChatMessage msg;
  std::uint64_t ref = 0;
};

// Asks for the room's last_seq and its newest `recent` messages (a welcome).
struct OpenRequest {
  std::string room;
  std::uint32_t recent = 200;
};

// Asks for the NEWEST `limit` of the messages with after < seq < before
// (before == 0: no upper bound), returned in ascending seq order.
struct ReadRequest {
  std::string room;
  std::uint64_t after = 0;
  std::uint64_t before = 0;
  std::uint32_t limit = 50;
  std::uint64_t ref = 0;
};

// ---- replies, log -> shard

// Messages of one room committed in one transaction, ascending seq;
// refs[i] is the ref of the append that produced messages[i].
struct Committed {
  std::string room;
  std::vector<ChatMessage> messages;
  std::vector<std::uint64_t> refs;
};

// The append with this ref was not stored (full map, I/O error, ...); its
// message has no seq and nobody may see it. `reason` is for the log/metrics.
struct AppendFailed {
  std::string room;
  std::uint64_t ref = 0;
  std::string reason;
};

// Answer to an OpenRequest. last_seq is 0 for a room without messages.
// complete: false when older retained messages exist beyond `recent`.
struct Opened {
  std::string room;
  std::uint64_t last_seq = 0;
  std::vector<ChatMessage> recent;  // ascending seq
  bool complete = true;
};

// Answer to a ReadRequest. complete: false when older retained messages
// matching the bounds exist beyond what was returned. A record that fails to
// decrypt is left out (and logged as an error): never garbage.
struct ReadResult {
  std::string room;
  std::uint64_t ref = 0;
  std::vector<ChatMessage> messages;  // ascending seq
  bool complete = true;
};

// Everything for one shard from one turn of the log (one group commit and
// the reads served after it).
struct LogReply {
  std::vector<Committed> committed;  // grouped per room, rooms in any order, each in seq order
  std::vector<AppendFailed> failed;
  std::vector<Opened> opened;
  std::vector<ReadResult> reads;
};

// What rooms/ sees (so rooms can be tested with a fake log).
class ChatLog {
 public:
  virtual ~ChatLog() = default;
  virtual bool append(std::uint32_t shard, AppendRequest&& r) = 0;
  virtual bool open(std::uint32_t shard, OpenRequest&& r) = 0;
  virtual bool read(std::uint32_t shard, ReadRequest&& r) = 0;
};

}  // namespace rc::persist
