// Lookups in the embedded asset table. The table itself is generated into the
// build tree (cmake/embed.cmake writes generated/web_assets_data.cc), so this
// file only declares what that one defines.

#include "rooms/web_assets.h"

#include <algorithm>

namespace rc::rooms {
namespace detail {
// Defined in the generated file, sorted by name, one entry per file of web/.
extern const std::span<const Asset> embedded_assets;
extern const std::span<const std::string_view> embedded_names;
}  // namespace detail

const Asset* find_asset(std::string_view name) {
  // A handful of entries: a linear scan beats anything cleverer.
  const auto it = std::find_if(detail::embedded_assets.begin(), detail::embedded_assets.end(),
                               [name](const Asset& a) { return a.name == name; });
  return it == detail::embedded_assets.end() ? nullptr : &*it;
}

std::span<const std::string_view> asset_names() {
  return detail::embedded_names;
}

}  // namespace rc::rooms
