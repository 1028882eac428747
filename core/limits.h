#pragma once
// Every limit rollcall enforces, in one place. Protocol limits come from
// ../shared/PROTOCOL.md; capacity limits size the pools allocated at start.
// Operator-tunable values (flags) have their defaults here and their bounds
// checked in config.cc.

#include <cstddef>
#include <cstdint>

namespace rc::limits {

// ---- HTTP (PROTOCOL section 1)
inline constexpr std::size_t http_head_bytes_max = 8192;  // larger head -> 431
inline constexpr std::size_t http_headers_max = 64;       // more header lines -> 431
inline constexpr std::size_t http_body_bytes_max = 16384; // POST bodies (tickets) -> 413
inline constexpr std::size_t room_id_bytes_max = 64;

// ---- identity (PROTOCOL section 2)
inline constexpr std::size_t user_id_bytes_max = 64;
inline constexpr std::size_t name_bytes_max = 64;

// ---- WebSocket (RFC 6455, PROTOCOL section 3)
inline constexpr std::size_t ws_control_payload_bytes_max = 125;
inline constexpr std::size_t ws_frame_header_bytes_max = 14;
inline constexpr std::size_t ws_close_reason_bytes_max = 123;

// ---- messages (PROTOCOL section 3.2)
inline constexpr std::size_t message_bytes_default = 8192;
inline constexpr std::size_t message_bytes_min = 256;
inline constexpr std::size_t message_bytes_max = 1 << 20;
inline constexpr std::size_t emoji_bytes_max = 32;
inline constexpr std::size_t status_text_chars_max = 100;
inline constexpr std::size_t client_id_bytes_max = 64;
inline constexpr std::size_t chat_chars_default = 2000;
inline constexpr std::uint32_t history_limit_default = 50;
inline constexpr std::uint32_t history_limit_max = 200;
inline constexpr std::uint32_t resume_messages_max = 1000;
// Messages a session may send before its welcome while its room is being
// opened: held, then handled in order once it is welcomed or queued.
inline constexpr std::size_t early_messages_max = 64;

// ---- capacity of one shard (pools are sized from these at start)
inline constexpr std::uint32_t shards_max = 256;
inline constexpr std::uint32_t connections_per_shard_max = 1u << 20;
inline constexpr std::uint32_t ring_entries = 4096;         // SQ size; CQ is twice that
inline constexpr std::uint32_t recv_buffer_bytes = 16384;   // one provided receive buffer
// Receive buffers per shard (power of two; resident from the start: 8 MiB).
// Enough for a full completion batch with room to spare; a connection that
// finds the ring empty re-arms its receive at the end of the loop turn.
inline constexpr std::uint32_t recv_buffers_per_shard = 512;
inline constexpr std::uint32_t mailbox_slots = 1u << 16;    // per shard, power of two
// Registered files per shard (io_uring's fixed file table: 8 bytes of kernel
// memory each): connections in slots past this many, or past RLIMIT_NOFILE,
// are named by their plain fd.
inline constexpr std::uint32_t registered_files_per_shard = 1u << 16;
// Frames in one sendmsg. Every connection with a send in flight holds one
// op of this many iovecs (a join storm: all of them), so it stays small.
inline constexpr std::uint32_t send_iovecs_max = 16;
// Readable bytes after every input range given to parsers (>= SIMDJSON_PADDING).
inline constexpr std::uint32_t read_padding_bytes = 64;

static_assert((recv_buffers_per_shard & (recv_buffers_per_shard - 1)) == 0);
static_assert((mailbox_slots & (mailbox_slots - 1)) == 0);
static_assert(recv_buffer_bytes > http_head_bytes_max, "a whole request head fits one buffer");
static_assert(message_bytes_default >= message_bytes_min && message_bytes_default <= message_bytes_max);

}  // namespace rc::limits
