#pragma once
// Which shard owns a room: hash(room) % shards. Stable for the life of the
// process (rooms are in memory; the chat log does not depend on it, so a
// restart with another --threads loses nothing).

#include <cstdint>
#include <functional>
#include <string_view>

namespace rc::rooms {

inline std::uint32_t owner_shard(std::string_view room, std::uint32_t shards) {
  return static_cast<std::uint32_t>(std::hash<std::string_view>{}(room) % shards);
}

}  // namespace rc::rooms
