#pragma once
// Server -> client bytes: WebSocket frames built once into shared FrameRefs,
// and the small JSON messages every session may get (pong, error).
//
// Pure apart from allocation from the calling thread's frame pool; frames
// must be sent by the thread that built them (core/frame.h).

#include <cstdint>
#include <string>
#include <string_view>

#include "core/frame.h"

namespace rc::out {

// One unmasked FIN frame with this opcode and payload.
FrameRef frame(std::uint8_t opcode, std::string_view payload);
inline FrameRef text(std::string_view json) { return frame(0x1, json); }
FrameRef close(std::uint16_t code, std::string_view reason);
// Raw bytes (HTTP answers).
inline FrameRef bytes(std::string_view raw) { return FrameRef::copy_of(raw); }

// {"type":"pong","ts":ts_ms}
void pong_json(std::string& out, std::int64_t ts_ms);
// {"type":"error","code":code,"message":message[,"ref":ref]} (ref left out when empty)
void error_json(std::string& out, std::string_view code, std::string_view message,
                std::string_view ref = {});

// Error codes of PROTOCOL section 3.1.
namespace code {
inline constexpr std::string_view kBadRequest = "BAD_REQUEST";
inline constexpr std::string_view kRateLimited = "RATE_LIMITED";
inline constexpr std::string_view kForbidden = "FORBIDDEN";
inline constexpr std::string_view kInternal = "INTERNAL";
inline constexpr std::string_view kRoomFull = "ROOM_FULL";
inline constexpr std::string_view kTooLarge = "TOO_LARGE";
inline constexpr std::string_view kShuttingDown = "SHUTTING_DOWN";
}  // namespace code

}  // namespace rc::out
