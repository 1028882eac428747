#pragma once
// The classroom web page and its browser SDK (web/*), compiled into the binary
// and served on GET / and GET /<name> (PROTOCOL section 1).
//
// The table is generated at build time by cmake/embed.cmake from every file in
// web/ and lives in static storage: every view below stays valid for the whole
// run. Lookups are pure and allocation-free and may be called from any thread.

#include <span>
#include <string_view>

namespace rc::rooms {

struct Asset {
  std::string_view name;          // file name, without '/': "index.html", "app.js"
  std::string_view content_type;  // the Content-Type to answer with
  std::string_view body;          // the file's bytes, exactly as in web/
};

// The asset with exactly this name (case-sensitive, no leading '/'), or
// nullptr if there is none.
const Asset* find_asset(std::string_view name);

// Every asset's name, in name order: the list to pass to http::route() so that
// "/<name>" is routed to Route::Static.
std::span<const std::string_view> asset_names();

// The Content-Type for a file name, by its extension (the text after the last
// '.', compared case-sensitively): html, js, css, svg, json, png, ico, txt,
// map; anything else is "application/octet-stream". Text types carry
// "; charset=utf-8".
constexpr std::string_view content_type_for(std::string_view name) {
  const std::size_t dot = name.rfind('.');
  const std::string_view ext =
      dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "json" || ext == "map") return "application/json";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

}  // namespace rc::rooms
