// Unit tests of rooms/web_assets.h: the table generated from web/ holds every
// file of the page byte for byte, with the right content types, and the page
// references only assets that exist. The files on disk are found from this
// source file's path, so the test compares against what is really in web/.

#include "rooms/web_assets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "protocol/http.h"
#include "protocol/route.h"
#include "protocol/utf8.h"

namespace rc::rooms {
namespace {

namespace fs = std::filesystem;

const fs::path& web_dir() {
  static const fs::path dir = fs::path(__FILE__).parent_path().parent_path().parent_path() / "web";
  return dir;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string_view body_of(std::string_view name) {
  const Asset* a = find_asset(name);
  EXPECT_NE(a, nullptr) << name;
  return a ? a->body : std::string_view();
}

TEST(WebAssets, TheFourFilesOfThePageAreThere) {
  for (const char* name : {"index.html", "app.js", "rollcall.js", "style.css"}) {
    const Asset* a = find_asset(name);
    ASSERT_NE(a, nullptr) << name;
    EXPECT_EQ(a->name, name);
    EXPECT_FALSE(a->body.empty()) << name;
  }
}

TEST(WebAssets, EveryFileOfWebIsEmbeddedByteForByte) {
  ASSERT_TRUE(fs::is_directory(web_dir())) << web_dir();
  std::set<std::string> on_disk;
  for (const auto& entry : fs::directory_iterator(web_dir())) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.starts_with(".") || name.ends_with("~")) continue;
    on_disk.insert(name);
    const Asset* a = find_asset(name);
    ASSERT_NE(a, nullptr) << name << " is in web/ but not embedded (rebuild?)";
    EXPECT_EQ(a->body, read_file(entry.path())) << name << " differs from web/" << name;
  }
  const std::span<const std::string_view> names = asset_names();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), on_disk);
}

TEST(WebAssets, NamesAreSortedUniqueAndAllFindable) {
  const std::span<const std::string_view> names = asset_names();
  ASSERT_FALSE(names.empty());
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
  for (std::string_view n : names) {
    const Asset* a = find_asset(n);
    ASSERT_NE(a, nullptr) << n;
    EXPECT_EQ(a->name, n);
    EXPECT_EQ(a->content_type, content_type_for(n));
    EXPECT_EQ(n.find('/'), std::string_view::npos);
  }
}

TEST(WebAssets, UnknownOrMisspelledNamesAreNotFound) {
  EXPECT_EQ(find_asset(""), nullptr);
  EXPECT_EQ(find_asset("/app.js"), nullptr);  // names carry no leading '/'
  EXPECT_EQ(find_asset("APP.JS"), nullptr);   // case-sensitive
  EXPECT_EQ(find_asset("app.js "), nullptr);
  EXPECT_EQ(find_asset("../CMakeLists.txt"), nullptr);
  EXPECT_EQ(find_asset("favicon.ico"), nullptr);
}

TEST(WebAssets, ContentTypesOfThePage) {
  EXPECT_EQ(find_asset("index.html")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(find_asset("app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(find_asset("rollcall.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(find_asset("style.css")->content_type, "text/css; charset=utf-8");
}

TEST(WebAssets, ContentTypeForGoesByTheLastExtension) {
  EXPECT_EQ(content_type_for("a.min.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("logo.svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for("x.png"), "image/png");
  EXPECT_EQ(content_type_for("favicon.ico"), "image/x-icon");
  EXPECT_EQ(content_type_for("m.json"), "application/json");
  EXPECT_EQ(content_type_for("rollcall.js.map"), "application/json");
  EXPECT_EQ(content_type_for("notes.txt"), "text/plain; charset=utf-8");
  EXPECT_EQ(content_type_for("README"), "application/octet-stream");
  EXPECT_EQ(content_type_for("page.HTML"), "application/octet-stream");  // case-sensitive
  EXPECT_EQ(content_type_for("html"), "application/octet-stream");       // no extension
  EXPECT_EQ(content_type_for("archive.tar.gz"), "application/octet-stream");
  static_assert(content_type_for("index.html") == "text/html; charset=utf-8");
}

TEST(WebAssets, TextAssetsAreValidUtf8) {
  for (std::string_view n : asset_names()) {
    const Asset* a = find_asset(n);
    if (a->content_type.find("charset=utf-8") == std::string_view::npos) continue;
    EXPECT_TRUE(utf8::valid(a->body)) << n;
  }
}

// Every "/<name>" that index.html loads (src= or href=) is an embedded asset.
TEST(WebAssets, IndexReferencesOnlyEmbeddedAssetsAndLoadsTheApp) {
  const std::string html(body_of("index.html"));
  const std::regex ref(R"re((?:src|href)="/([^"]*)")re");
  std::set<std::string> refs;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), ref); it != std::sregex_iterator();
       ++it) {
    refs.insert((*it)[1].str());
  }
  EXPECT_TRUE(refs.count("app.js")) << "index.html does not load /app.js";
  EXPECT_TRUE(refs.count("style.css")) << "index.html does not load /style.css";
  for (const std::string& r : refs) EXPECT_NE(find_asset(r), nullptr) << "index.html loads /" << r;
  EXPECT_NE(html.find(R"(<script type="module" src="/app.js">)"), std::string::npos);
}

TEST(WebAssets, TheAppImportsTheSdkWhichExportsTheClient) {
  const std::string_view app = body_of("app.js");
  EXPECT_NE(app.find("from '/rollcall.js'"), std::string_view::npos);
  const std::string_view sdk = body_of("rollcall.js");
  EXPECT_NE(sdk.find("export class RollcallClient"), std::string_view::npos);
  EXPECT_NE(sdk.find("export async function fetchTicket"), std::string_view::npos);
}

// The list handed to the router makes "/<name>" a static route, and "/" the page.
TEST(WebAssets, TheRouterServesEveryAssetByName) {
  std::vector<std::string> raw;
  for (std::string_view n : asset_names())
    raw.push_back("GET /" + std::string(n) + " HTTP/1.1\r\n\r\n");
  raw.push_back("GET / HTTP/1.1\r\n\r\n");
  raw.push_back("GET /missing.js HTTP/1.1\r\n\r\n");
  for (const std::string& bytes : raw) {
    http::Request req;
    ASSERT_EQ(http::parse_request(bytes, req).status, http::ParseStatus::Complete);
    const http::Routed r = http::route(req, http::RouteOptions{}, asset_names());
    if (req.path == "/missing.js") {
      EXPECT_EQ(r.route, http::Route::Error);
      EXPECT_EQ(r.status, 404);
      continue;
    }
    ASSERT_EQ(r.route, http::Route::Static) << req.path;
    const Asset* a = find_asset(r.asset);
    ASSERT_NE(a, nullptr) << r.asset;
    EXPECT_EQ(req.path == "/" ? "index.html" : req.path.substr(1), a->name);
  }
}

}  // namespace
}  // namespace rc::rooms
