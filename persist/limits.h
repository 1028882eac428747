#pragma once
// The limits of the chat log (persist/), in one place. They size the writer's
// inbox, bound the work of one loop turn and bound what one read may return.
// Protocol limits (history page size, resume window) stay in core/limits.h;
// the static_asserts below tie the two together.

#include <cstddef>
#include <cstdint>

#include "core/limits.h"

namespace rc::persist::limits {

// Requests (appends, opens, reads) that may wait for the persistence thread
// before append()/open()/read() start refusing. Power of two (MpscQueue).
inline constexpr std::size_t inbox_requests = 1u << 16;

// Retention deletes in one write transaction. A larger backlog (the operator
// lowered --chat-retention) is worked off one transaction per loop turn.
inline constexpr std::uint64_t retention_deletes_per_txn = 10000;

// The most messages one Open or Read returns; larger requests are clamped.
// --history-on-join may be up to 10000 (core/config.h).
inline constexpr std::uint32_t read_messages_max = 10000;

// Replies that may wait for a shard that refuses them before the writer stops
// taking new requests (the inbox then fills up and callers see `false`).
inline constexpr std::size_t pending_replies_per_shard_max = 1024;
// How long the writer waits before offering a refused reply again.
inline constexpr std::uint32_t deliver_retry_ms = 1;
// How long stop() keeps offering refused replies before dropping them.
inline constexpr std::uint32_t stop_deliver_ms = 1000;

// Sizes of the fields of a record body. Longer fields are refused
// (AppendFailed): the protocol's limits are far below these.
inline constexpr std::size_t body_field_bytes_max = 1u << 20;

// A key file larger than this is not a key file.
inline constexpr std::size_t key_file_bytes_max = 4096;

// Default size of the LMDB map: the most bytes the log may ever hold.
inline constexpr std::size_t map_bytes_default = std::size_t{8} << 30;

static_assert((inbox_requests & (inbox_requests - 1)) == 0, "MpscQueue needs a power of two");
static_assert(read_messages_max >= rc::limits::resume_messages_max,
              "a resume (since=S) must fit one read");
static_assert(read_messages_max >= rc::limits::history_limit_max,
              "a history page must fit one read");
static_assert(body_field_bytes_max <= UINT32_MAX, "field lengths are stored as u32");

}  // namespace rc::persist::limits
