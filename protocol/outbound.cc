#include "protocol/outbound.h"

#include <cstring>

#include "protocol/json_writer.h"
#include "protocol/ws.h"

namespace rc::out {

FrameRef frame(std::uint8_t opcode, std::string_view payload) {
  std::size_t header = ws::server_header_bytes(payload.size());
  FrameRef f = FrameRef::allocate(header + payload.size());
  ws::write_server_header(f.data(), opcode, payload.size());
  if (!payload.empty()) std::memcpy(f.data() + header, payload.data(), payload.size());
  f.set_size(header + payload.size());
  return f;
}

FrameRef close(std::uint16_t code, std::string_view reason) {
  FrameRef f = FrameRef::allocate(2 + 2 + limits::ws_close_reason_bytes_max);
  f.set_size(ws::write_close_frame(f.data(), code, reason));
  return f;
}

void pong_json(std::string& out, std::int64_t ts_ms) {
  json::Writer w(out);
  w.begin_object().field("type", "pong").field("ts", ts_ms).end_object();
}

void error_json(std::string& out, std::string_view code, std::string_view message,
                std::string_view ref) {
  json::Writer w(out);
  w.begin_object().field("type", "error").field("code", code).field("message", message);
  if (!ref.empty()) w.field("ref", ref);
  w.end_object();
}

}  // namespace rc::out
