// Unit tests of rooms/room.h: membership, presence rules and the coalescing
// of a tick's changes into one delta (PROTOCOL 3.1 and 3.3). Every message the
// room writes is parsed back (simdjson DOM, tests only) and checked field by
// field, including the exact set of keys each entry carries. Times are
// injected: `now` is the monotonic clock, `wall` the server's wall clock.

#include "rooms/room.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace rc::rooms {
namespace {

using msg::Presence;
using msg::UserStatus;
using Keys = std::set<std::string>;

// ---- A parsed JSON value, detached from the parser that read it.

struct Json {
  enum class Kind { kNull, kBool, kInt, kDouble, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::int64_t integer = 0;
  double real = 0;
  std::string text;
  std::vector<Json> items;
  std::map<std::string, Json> fields;

  bool has(const std::string& k) const { return fields.count(k) != 0; }

  const Json& at(const std::string& k) const {
    static const Json missing;
    auto it = fields.find(k);
    if (it == fields.end()) {
      ADD_FAILURE() << "no key \"" << k << "\"";
      return missing;
    }
    return it->second;
  }

  double number() const {
    EXPECT_TRUE(kind == Kind::kInt || kind == Kind::kDouble) << "not a number";
    return kind == Kind::kInt ? static_cast<double>(integer) : real;
  }

  std::int64_t whole() const {
    EXPECT_EQ(kind, Kind::kInt) << "not an integer";
    return integer;
  }

  const std::string& str() const {
    EXPECT_EQ(kind, Kind::kString) << "not a string";
    return text;
  }

  bool flag() const {
    EXPECT_EQ(kind, Kind::kBool) << "not a bool";
    return boolean;
  }

  Keys keys() const {
    Keys k;
    for (const auto& [name, value] : fields) k.insert(name);
    return k;
  }
};

Json convert(simdjson::dom::element e);

Json convert_object(simdjson::dom::object obj) {
  Json j;
  j.kind = Json::Kind::kObject;
  for (simdjson::dom::key_value_pair kv : obj) {
    const std::string key(kv.key);
    EXPECT_FALSE(j.has(key)) << "duplicate key " << key;
    j.fields[key] = convert(kv.value);
  }
  return j;
}

Json convert(simdjson::dom::element e) {
  Json j;
  switch (e.type()) {
    case simdjson::dom::element_type::OBJECT: {
      simdjson::dom::object obj;
      EXPECT_EQ(e.get(obj), simdjson::SUCCESS);
      return convert_object(obj);
    }
    case simdjson::dom::element_type::ARRAY: {
      simdjson::dom::array arr;
      EXPECT_EQ(e.get(arr), simdjson::SUCCESS);
      j.kind = Json::Kind::kArray;
      for (simdjson::dom::element item : arr) j.items.push_back(convert(item));
      return j;
    }
    case simdjson::dom::element_type::INT64:
      j.kind = Json::Kind::kInt;
      EXPECT_EQ(e.get(j.integer), simdjson::SUCCESS);
      return j;
    case simdjson::dom::element_type::UINT64: {
      std::uint64_t u = 0;
      EXPECT_EQ(e.get(u), simdjson::SUCCESS);
      j.kind = Json::Kind::kInt;
      j.integer = static_cast<std::int64_t>(u);
      return j;
    }
    case simdjson::dom::element_type::DOUBLE:
      j.kind = Json::Kind::kDouble;
      EXPECT_EQ(e.get(j.real), simdjson::SUCCESS);
      return j;
    case simdjson::dom::element_type::STRING: {
      std::string_view s;
      EXPECT_EQ(e.get(s), simdjson::SUCCESS);
      j.kind = Json::Kind::kString;
      j.text = std::string(s);
      return j;
    }
    case simdjson::dom::element_type::BOOL:
      j.kind = Json::Kind::kBool;
      EXPECT_EQ(e.get(j.boolean), simdjson::SUCCESS);
      return j;
    case simdjson::dom::element_type::NULL_VALUE:
      return j;
  }
  return j;
}

Json parse(const std::string& text) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  const auto err = parser.parse(text).get(root);
  EXPECT_EQ(err, simdjson::SUCCESS) << text;
  if (err != simdjson::SUCCESS) return Json{};
  return convert(root);
}

// ---- The shapes of the room's output (PROTOCOL 3.1).

// Every key of a whole member object (welcome, sync, joined).
const Keys kMemberKeys = {"user_id", "name",    "role",   "x",           "y",       "emoji",
                          "hand",    "hand_at", "status", "status_text", "devices", "connected"};

// A member list by user id; each entry must be a whole member, listed once.
using Members = std::map<std::string, Json>;

Members index_members(const Json& list, const char* what) {
  Members by_id;
  EXPECT_EQ(list.kind, Json::Kind::kArray) << what;
  for (const Json& m : list.items) {
    EXPECT_EQ(m.keys(), kMemberKeys) << what;
    const std::string id = m.at("user_id").str();
    EXPECT_FALSE(by_id.count(id)) << what << ": " << id << " listed twice";
    by_id[id] = m;
  }
  return by_id;
}

struct Delta {
  std::uint64_t tick = 0;
  Members joined;                       // whole members, by user id
  std::map<std::string, Json> updated;  // partial entries, by user id
  std::vector<std::string> left;
  std::string text;  // as written, for failure messages
};

void read_updated(const Json& list, Delta& d) {
  EXPECT_EQ(list.kind, Json::Kind::kArray);
  for (const Json& u : list.items) {
    EXPECT_EQ(u.kind, Json::Kind::kObject);
    const std::string id = u.at("user_id").str();
    EXPECT_FALSE(d.updated.count(id)) << id << " updated twice";
    EXPECT_GT(u.fields.size(), 1u) << "an updated entry without a change: " << id;
    d.updated[id] = u;
  }
}

// Parses a delta and checks the invariants every delta holds: known keys only,
// each user in at most one section, and at least one change.
Delta parse_delta(const std::string& text) {
  Delta d;
  d.text = text;
  const Json j = parse(text);
  EXPECT_EQ(j.kind, Json::Kind::kObject) << text;
  for (const std::string& k : j.keys()) {
    EXPECT_TRUE(Keys({"type", "tick", "joined", "updated", "left"}).count(k)) << k;
  }
  EXPECT_EQ(j.at("type").str(), "delta");
  d.tick = static_cast<std::uint64_t>(j.at("tick").whole());
  if (j.has("joined")) d.joined = index_members(j.at("joined"), "joined");
  if (j.has("updated")) read_updated(j.at("updated"), d);
  if (j.has("left")) {
    EXPECT_EQ(j.at("left").kind, Json::Kind::kArray);
    for (const Json& id : j.at("left").items) d.left.push_back(id.str());
  }
  std::set<std::string> seen;
  for (const auto& [id, m] : d.joined) EXPECT_TRUE(seen.insert(id).second) << id;
  for (const auto& [id, u] : d.updated) EXPECT_TRUE(seen.insert(id).second) << id << ": " << text;
  for (const std::string& id : d.left) EXPECT_TRUE(seen.insert(id).second) << id << ": " << text;
  EXPECT_FALSE(seen.empty()) << "a delta with no change: " << text;
  return d;
}

// ---- Inputs.

constexpr std::int64_t kT0 = 1'000'000;             // monotonic ms at the start of a test
constexpr std::int64_t kWall0 = 1'763'798'400'000;  // wall-clock ms at the start of a test
constexpr RoomRules kRules{
    .leave_grace_ms = 15000, .idle_after_ms = 60000, .away_after_ms = 180000};

Identity person(const std::string& id, Role role = Role::kStudent, bool may_rename = true) {
  return Identity{.user_id = id, .name = "name of " + id, .role = role, .may_rename = may_rename};
}

// A presence update with only the fields named set, as the decoder makes it.
struct P {
  Presence p;
  P& x(double v) { return with(Presence::kHasX, p.x = v); }
  P& y(double v) { return with(Presence::kHasY, p.y = v); }
  P& emoji(std::string_view v) { return with(Presence::kHasEmoji, p.emoji = v); }
  P& hand(bool v) { return with(Presence::kHasHand, p.hand = v); }
  P& status(UserStatus v) { return with(Presence::kHasStatus, p.status = v); }
  P& status_text(std::string_view v) { return with(Presence::kHasStatusText, p.status_text = v); }
  P& name(std::string_view v) { return with(Presence::kHasName, p.name = v); }
  operator const Presence&() const { return p; }  // NOLINT: used where a Presence is due

 private:
  // The setters above assign the field in the argument list; this marks it present.
  template <typename Assigned>
  P& with(std::uint8_t bit, const Assigned&) {
    p.has |= bit;
    return *this;
  }
};

class RoomTest : public ::testing::Test {
 protected:
  Room room{"physics-101", kRules};
  std::int64_t now = kT0;
  std::int64_t wall = kWall0;

  Member& join(const std::string& id) { return room.attach(person(id), now); }

  void apply_ok(Member& m, const Presence& p) {
    const Status st = room.apply(m, p, now, wall);
    EXPECT_TRUE(st.is_ok()) << st.message();
  }

  // The next delta, which must exist.
  Delta delta() {
    std::string out;
    EXPECT_TRUE(room.build_delta(out)) << "no delta";
    return parse_delta(out);
  }

  // There is no net change: build_delta leaves the buffer and the tick alone.
  void expect_no_delta() {
    const std::uint64_t tick = room.tick();
    std::string out = "kept";
    EXPECT_FALSE(room.build_delta(out)) << out;
    EXPECT_EQ(out, "kept");
    EXPECT_EQ(room.tick(), tick);
  }

  // Ends the tick whatever it held: what follows starts from published state.
  void publish() {
    std::string out;
    room.build_delta(out);
  }

  Members members(Member* self = nullptr) {
    std::string out;
    room.write_members(out, self);
    return index_members(parse(out), "members");
  }
};

// What a client does with a delta: `joined` as an upsert, `updated` merged
// field by field, `left` removed (it may name a user the client's list never
// showed: one who left just before its welcome or sync).
void apply_delta(Members& model, const Delta& d) {
  for (const auto& [id, m] : d.joined) model[id] = m;
  for (const auto& [id, u] : d.updated) {
    auto it = model.find(id);
    ASSERT_NE(it, model.end()) << "an update for " << id << ", unknown here: " << d.text;
    for (const auto& [k, v] : u.fields) it->second.fields[k] = v;
  }
  for (const std::string& id : d.left) model.erase(id);
}

std::string canonical(const Json& j) {
  switch (j.kind) {
    case Json::Kind::kNull:
      return "null";
    case Json::Kind::kBool:
      return j.boolean ? "true" : "false";
    case Json::Kind::kInt:
      return std::to_string(j.integer);
    case Json::Kind::kDouble:
      return fmt::format("{}", j.real);
    case Json::Kind::kString:
      return '"' + j.text + '"';
    case Json::Kind::kArray: {
      std::string out = "[";
      for (const Json& item : j.items) out += canonical(item) + ",";
      return out + "]";
    }
    case Json::Kind::kObject: {
      std::string out = "{";
      for (const auto& [k, v] : j.fields) out += k + ":" + canonical(v) + ",";
      return out + "}";
    }
  }
  return "?";
}

void expect_same(const Members& model, const Members& truth) {
  std::string a, b;
  for (const auto& [id, m] : model) a += canonical(m) + "\n";
  for (const auto& [id, m] : truth) b += canonical(m) + "\n";
  EXPECT_EQ(a, b);
}

// ---- joined

TEST_F(RoomTest, JoinAppearsOnlyInJoinedWithFinalState) {
  Member& a = join("a");
  publish();
  Member& b = join("b");
  apply_ok(b, P().x(0.25).y(0.5).emoji("👍").status_text("lab 3"));
  apply_ok(b, P().x(0.75));  // only the last x counts
  apply_ok(a, P().x(0.1));
  const Delta d = delta();
  ASSERT_EQ(d.joined.size(), 1u) << d.text;
  const Json& jb = d.joined.at("b");
  EXPECT_EQ(jb.at("name").str(), "name of b");
  EXPECT_EQ(jb.at("role").str(), "student");
  EXPECT_EQ(jb.at("x").number(), 0.75);
  EXPECT_EQ(jb.at("y").number(), 0.5);
  EXPECT_EQ(jb.at("emoji").str(), "👍");
  EXPECT_FALSE(jb.at("hand").flag());
  EXPECT_EQ(jb.at("hand_at").whole(), 0);
  EXPECT_EQ(jb.at("status").str(), "online");
  EXPECT_EQ(jb.at("status_text").str(), "lab 3");
  EXPECT_EQ(jb.at("devices").whole(), 1);
  EXPECT_TRUE(jb.at("connected").flag());
  EXPECT_EQ(d.updated.size(), 1u) << d.text;  // a only: b is not repeated there
  EXPECT_EQ(d.updated.at("a").keys(), Keys({"user_id", "x"}));
  EXPECT_TRUE(d.left.empty());
}

TEST_F(RoomTest, UnplacedJoinerIsAtTheOrigin) {
  room.attach(person("t", Role::kTeacher), now);
  const Delta d = delta();
  const Json& t = d.joined.at("t");
  EXPECT_EQ(t.at("x").number(), 0);
  EXPECT_EQ(t.at("y").number(), 0);
  EXPECT_EQ(t.at("role").str(), "teacher");
  EXPECT_TRUE(d.updated.empty());
}

TEST_F(RoomTest, JoinWithTwoDevicesInOneTickJoinsOnce) {
  join("a");
  join("a");
  const Delta d = delta();
  ASSERT_EQ(d.joined.size(), 1u);
  EXPECT_EQ(d.joined.at("a").at("devices").whole(), 2);
  EXPECT_TRUE(d.updated.empty());
  EXPECT_EQ(room.member_count(), 1u);
}

TEST_F(RoomTest, JoinerChangesAfterItsDeltaAreUpdates) {
  Member& a = join("a");
  publish();
  apply_ok(a, P().y(0.5));
  const Delta d = delta();
  EXPECT_TRUE(d.joined.empty());
  EXPECT_EQ(d.updated.at("a").keys(), Keys({"user_id", "y"}));
}

// ---- coalescing

TEST_F(RoomTest, FieldChangedAndChangedBackIsLeftOut) {
  Member& a = join("a");
  apply_ok(a, P().x(0.5).emoji("a"));
  publish();
  apply_ok(a, P().x(0.9).emoji("b"));
  apply_ok(a, P().x(0.5).emoji("a").y(0.125));
  const Delta d = delta();
  EXPECT_EQ(d.updated.at("a").keys(), Keys({"user_id", "y"}));
  EXPECT_EQ(d.updated.at("a").at("y").number(), 0.125);
}

// The room keeps the published state of dirty members only, in slots reused
// from tick to tick: each member must be compared with its own, whatever the
// order in which members changed and however many joiners came between.
TEST_F(RoomTest, EachMemberComparesWithItsOwnPublishedState) {
  Member& a = join("a");
  Member& b = join("b");
  Member& c = join("c");
  apply_ok(a, P().x(0.1).emoji("a"));
  apply_ok(b, P().x(0.2).emoji("b"));
  apply_ok(c, P().x(0.3).emoji("c"));
  publish();
  apply_ok(c, P().x(0.9));
  Member& d = join("d");
  apply_ok(d, P().x(0.4));
  apply_ok(b, P().emoji("a"));  // b takes a's emoji: still a change for b
  apply_ok(a, P().x(0.2).emoji("b"));
  apply_ok(a, P().x(0.1).emoji("a"));  // and back: no change for a
  Delta t2 = delta();
  EXPECT_EQ(t2.joined.count("d"), 1u) << t2.text;
  EXPECT_FALSE(t2.updated.count("a")) << t2.text;
  EXPECT_EQ(t2.updated.at("b").keys(), Keys({"user_id", "emoji"}));
  EXPECT_EQ(t2.updated.at("b").at("emoji").str(), "a");
  EXPECT_EQ(t2.updated.at("c").keys(), Keys({"user_id", "x"}));
  // Next tick, other order: each is compared with what tick 2 published.
  apply_ok(d, P().x(0.4).emoji("d"));
  apply_ok(b, P().emoji("b"));
  apply_ok(c, P().x(0.9));
  const Delta t3 = delta();
  EXPECT_EQ(t3.updated.size(), 2u) << t3.text;
  EXPECT_EQ(t3.updated.at("d").keys(), Keys({"user_id", "emoji"}));
  EXPECT_EQ(t3.updated.at("b").at("emoji").str(), "b");
  EXPECT_FALSE(t3.updated.count("c")) << t3.text;
}

TEST_F(RoomTest, UserWithNoNetChangeIsLeftOut) {
  Member& a = join("a");
  Member& b = join("b");
  publish();
  apply_ok(a, P().x(0.3).hand(true));
  apply_ok(a, P().x(0).hand(false));
  apply_ok(b, P().x(0.3));
  const Delta d = delta();
  EXPECT_EQ(d.updated.size(), 1u) << d.text;
  EXPECT_TRUE(d.updated.count("b"));
  EXPECT_FALSE(d.updated.count("a"));
}

TEST_F(RoomTest, NoNetChangeProducesNoDelta) {
  expect_no_delta();  // an empty room
  Member& a = join("a");
  publish();
  const std::uint64_t tick = room.tick();
  apply_ok(a, P().x(0.4).status(UserStatus::kBusy).status_text("x"));
  apply_ok(a, P().x(0).status(UserStatus::kOnline).status_text(""));
  expect_no_delta();
  EXPECT_EQ(room.tick(), tick);
  // A later real change is the very next tick.
  apply_ok(a, P().x(0.4));
  EXPECT_EQ(delta().tick, tick + 1);
}

TEST_F(RoomTest, OnlyEachFieldsFinalValueCounts) {
  Member& a = join("a");
  publish();
  apply_ok(a, P().x(0.1).status(UserStatus::kBusy).emoji("🙂"));
  apply_ok(a, P().x(0.2).status(UserStatus::kAway));
  apply_ok(a, P().x(0.3).emoji(""));
  const Delta d = delta();
  const Json& u = d.updated.at("a");
  EXPECT_EQ(u.keys(), Keys({"user_id", "x", "status"}));
  EXPECT_EQ(u.at("x").number(), 0.3);
  EXPECT_EQ(u.at("status").str(), "away");
}

TEST_F(RoomTest, JoinAndLeaveInOneTickAppearNowhere) {
  Member& a = join("a");
  publish();
  Member& b = join("b");
  apply_ok(b, P().x(0.5));
  room.detach(b, /*client_closed=*/true, now);
  EXPECT_FALSE(room.has_member("b"));
  EXPECT_EQ(room.member_count(), 1u);
  expect_no_delta();  // b alone is no change at all
  Member& c = join("c");
  room.detach(c, true, now);
  apply_ok(a, P().x(0.5));
  const Delta d = delta();
  EXPECT_TRUE(d.joined.empty()) << d.text;
  EXPECT_TRUE(d.left.empty()) << d.text;
  EXPECT_EQ(d.updated.size(), 1u) << d.text;
  EXPECT_TRUE(d.updated.count("a"));
}

TEST_F(RoomTest, JoinThenDropInOneTickJoinsDisconnected) {
  Member& b = join("b");
  room.detach(b, /*client_closed=*/false, now);
  const Delta d = delta();
  const Json& jb = d.joined.at("b");
  EXPECT_EQ(jb.at("devices").whole(), 0);
  EXPECT_FALSE(jb.at("connected").flag());
  EXPECT_EQ(room.member_count(), 1u);
}

TEST_F(RoomTest, LeaveThenRejoinInOneTickIsANetUpdate) {
  Member& a = join("a");
  wall += 5;
  apply_ok(a, P().x(0.5).y(0.25).emoji("✋").hand(true).status(UserStatus::kBusy).status_text("t"));
  publish();
  room.detach(a, /*client_closed=*/true, now);
  EXPECT_EQ(room.member_count(), 0u);
  Member& again = room.attach(person("a"), now);
  EXPECT_EQ(room.member_count(), 1u);
  EXPECT_TRUE(room.has_member("a"));
  const Delta d = delta();
  EXPECT_TRUE(d.joined.empty()) << d.text;
  EXPECT_TRUE(d.left.empty()) << d.text;
  const Json& u = d.updated.at("a");
  EXPECT_EQ(u.keys(),
            Keys({"user_id", "x", "y", "emoji", "hand", "hand_at", "status", "status_text"}));
  EXPECT_EQ(u.at("x").number(), 0);
  EXPECT_EQ(u.at("y").number(), 0);
  EXPECT_EQ(u.at("emoji").str(), "");
  EXPECT_FALSE(u.at("hand").flag());
  EXPECT_EQ(u.at("hand_at").whole(), 0);
  EXPECT_EQ(u.at("status").str(), "online");
  EXPECT_EQ(u.at("status_text").str(), "");
  // The member lives on: its next change is an update, and nobody left.
  apply_ok(again, P().x(0.5));
  const Delta next = delta();
  EXPECT_TRUE(next.left.empty()) << next.text;
  EXPECT_EQ(next.updated.at("a").keys(), Keys({"user_id", "x"}));
}

TEST_F(RoomTest, LeaveThenRejoinWithNothingToResetIsNoChange) {
  Member& a = join("a");
  publish();
  room.detach(a, true, now);
  join("a");
  expect_no_delta();
  EXPECT_TRUE(room.has_member("a"));
  EXPECT_EQ(members().count("a"), 1u);
}

TEST_F(RoomTest, LeaveThenRejoinWithAnotherIdentityUpdatesNameAndRole) {
  Member& a = join("a");
  publish();
  room.detach(a, true, now);
  Identity teacher = person("a", Role::kTeacher, false);
  teacher.name = "Prof. A";
  room.attach(teacher, now);
  const Delta d = delta();
  const Json& u = d.updated.at("a");
  EXPECT_EQ(u.keys(), Keys({"user_id", "name", "role"})) << d.text;
  EXPECT_EQ(u.at("name").str(), "Prof. A");
  if (u.has("role")) {
    EXPECT_EQ(u.at("role").str(), "teacher");
  }
  EXPECT_EQ(members().at("a").at("role").str(), "teacher");
}

TEST_F(RoomTest, JoinLeaveRejoinInOneTickJoinsFresh) {
  Member& a = join("a");
  apply_ok(a, P().x(0.5).hand(true));
  room.detach(a, true, now);
  join("a");
  const Delta d = delta();
  EXPECT_TRUE(d.left.empty()) << d.text;
  EXPECT_TRUE(d.updated.empty()) << d.text;
  const Json& ja = d.joined.at("a");
  EXPECT_EQ(ja.at("x").number(), 0);
  EXPECT_FALSE(ja.at("hand").flag());
  EXPECT_EQ(ja.at("devices").whole(), 1);
}

// ---- devices, leaving and the reconnect grace

TEST_F(RoomTest, SecondDeviceUpdatesDevicesOnly) {
  Member& a = join("a");
  apply_ok(a, P().x(0.5));
  publish();
  Member& same = join("a");
  EXPECT_EQ(&same, &a);
  Delta d = delta();
  EXPECT_EQ(d.updated.at("a").keys(), Keys({"user_id", "devices"}));
  EXPECT_EQ(d.updated.at("a").at("devices").whole(), 2);
  EXPECT_EQ(room.member_count(), 1u);
  room.detach(a, /*client_closed=*/true, now);  // one of two: the member stays
  d = delta();
  EXPECT_EQ(d.updated.at("a").keys(), Keys({"user_id", "devices"}));
  EXPECT_EQ(d.updated.at("a").at("devices").whole(), 1);
  EXPECT_TRUE(d.left.empty());
  EXPECT_TRUE(room.has_member("a"));
}

TEST_F(RoomTest, LastDeviceClosedByClientLeaves) {
  Member& a = join("a");
  join("b");
  apply_ok(a, P().x(0.5));
  publish();
  room.detach(a, /*client_closed=*/true, now);
  EXPECT_FALSE(room.has_member("a"));
  EXPECT_EQ(room.member_count(), 1u);
  const Delta d = delta();
  EXPECT_EQ(d.left, std::vector<std::string>({"a"}));
  EXPECT_TRUE(d.updated.empty()) << d.text;
  EXPECT_TRUE(d.joined.empty()) << d.text;
  // Gone: coming back later is a fresh join.
  join("a");
  const Delta back = delta();
  EXPECT_EQ(back.joined.at("a").at("x").number(), 0);
  EXPECT_TRUE(back.left.empty());
}

TEST_F(RoomTest, DropStartsTheGraceThenSweepLeaves) {
  Member& a = join("a");
  publish();
  room.detach(a, /*client_closed=*/false, now);
  EXPECT_TRUE(room.has_member("a"));
  EXPECT_EQ(room.member_count(), 1u);  // still holds its place
  const Delta d = delta();
  const Json& u = d.updated.at("a");
  EXPECT_EQ(u.keys(), Keys({"user_id", "devices", "connected"}));
  EXPECT_EQ(u.at("devices").whole(), 0);
  EXPECT_FALSE(u.at("connected").flag());
  EXPECT_TRUE(d.left.empty());
  EXPECT_FALSE(room.sweep(kT0 + kRules.leave_grace_ms - 1));
  expect_no_delta();
  EXPECT_TRUE(room.sweep(kT0 + kRules.leave_grace_ms));
  EXPECT_FALSE(room.has_member("a"));
  EXPECT_EQ(room.member_count(), 0u);
  const Delta gone = delta();
  EXPECT_EQ(gone.left, std::vector<std::string>({"a"}));
  EXPECT_TRUE(gone.updated.empty()) << gone.text;
}

TEST_F(RoomTest, ReturnWithinGraceRestoresAndKeepsPresence) {
  Member& a = join("a");
  wall += 7;
  apply_ok(a, P().x(0.5).hand(true).emoji("🙂"));
  publish();
  room.detach(a, /*client_closed=*/false, now);
  publish();
  now = kT0 + kRules.leave_grace_ms - 1;
  Member& back = room.attach(person("a"), now);
  EXPECT_EQ(&back, &a);
  const Delta d = delta();
  EXPECT_TRUE(d.joined.empty()) << d.text;
  EXPECT_TRUE(d.left.empty()) << d.text;
  const Json& u = d.updated.at("a");
  EXPECT_EQ(u.keys(), Keys({"user_id", "devices", "connected"}));
  EXPECT_EQ(u.at("devices").whole(), 1);
  EXPECT_TRUE(u.at("connected").flag());
  const Json m = members().at("a");
  EXPECT_EQ(m.at("x").number(), 0.5);
  EXPECT_TRUE(m.at("hand").flag());
  EXPECT_EQ(m.at("hand_at").whole(), kWall0 + 7);
  EXPECT_EQ(m.at("emoji").str(), "🙂");
  // The old deadline no longer applies.
  EXPECT_FALSE(room.sweep(kT0 + kRules.leave_grace_ms + 1));
  EXPECT_TRUE(room.has_member("a"));
  expect_no_delta();
}

TEST_F(RoomTest, GraceExpiryThenReturnInOneTickIsAFreshUpdate) {
  Member& a = join("a");
  apply_ok(a, P().x(0.5));
  publish();
  room.detach(a, /*client_closed=*/false, now);
  publish();
  now = kT0 + kRules.leave_grace_ms;
  EXPECT_TRUE(room.sweep(now));
  EXPECT_EQ(room.member_count(), 0u);
  room.attach(person("a"), now);
  EXPECT_EQ(room.member_count(), 1u);
  const Delta d = delta();
  EXPECT_TRUE(d.joined.empty()) << d.text;
  EXPECT_TRUE(d.left.empty()) << d.text;
  const Json& u = d.updated.at("a");
  EXPECT_EQ(u.keys(), Keys({"user_id", "x", "devices", "connected"}));
  EXPECT_EQ(u.at("x").number(), 0);
  EXPECT_EQ(u.at("devices").whole(), 1);
  EXPECT_TRUE(u.at("connected").flag());
}

TEST_F(RoomTest, DropAndReturnInOneTickIsNoChange) {
  Member& a = join("a");
  publish();
  room.detach(a, false, now);
  join("a");
  expect_no_delta();
  EXPECT_FALSE(room.sweep(kT0 + kRules.leave_grace_ms));
  EXPECT_TRUE(room.has_member("a"));
}

TEST(RoomGrace, ZeroGraceLeavesAtOnce) {
  RoomRules rules = kRules;
  rules.leave_grace_ms = 0;
  Room room("r", rules);
  Member& a = room.attach(person("a"), kT0);
  std::string out;
  ASSERT_TRUE(room.build_delta(out));
  room.detach(a, /*client_closed=*/false, kT0);
  EXPECT_FALSE(room.has_member("a"));
  EXPECT_EQ(room.member_count(), 0u);
  out.clear();
  ASSERT_TRUE(room.build_delta(out));
  const Delta d = parse_delta(out);
  EXPECT_EQ(d.left, std::vector<std::string>({"a"}));
  EXPECT_TRUE(d.updated.empty()) << out;
}

// ---- hands

TEST_F(RoomTest, RaisingSetsHandAtToWallTime) {
  Member& a = join("a");
  publish();
  wall = kWall0 + 1234;
  apply_ok(a, P().hand(true));
  const Delta d = delta();
  const Json& u = d.updated.at("a");
  EXPECT_EQ(u.keys(), Keys({"user_id", "hand", "hand_at"}));
  EXPECT_TRUE(u.at("hand").flag());
  EXPECT_EQ(u.at("hand_at").whole(), kWall0 + 1234);
}

TEST_F(RoomTest, RaisingARaisedHandKeepsHandAt) {
  Member& a = join("a");
  Member& b = join("b");
  apply_ok(a, P().hand(true));
  wall += 10;
  apply_ok(b, P().hand(true));
  publish();
  wall += 10;
  apply_ok(a, P().hand(true));
  expect_no_delta();
  const Members m = members();
  EXPECT_EQ(m.at("a").at("hand_at").whole(), kWall0);
  EXPECT_LT(m.at("a").at("hand_at").whole(), m.at("b").at("hand_at").whole());
}

TEST_F(RoomTest, LoweringClearsHandAt) {
  Member& a = join("a");
  apply_ok(a, P().hand(true));
  publish();
  apply_ok(a, P().hand(false));
  const Delta d = delta();
  const Json& u = d.updated.at("a");
  EXPECT_EQ(u.keys(), Keys({"user_id", "hand", "hand_at"}));
  EXPECT_FALSE(u.at("hand").flag());
  EXPECT_EQ(u.at("hand_at").whole(), 0);
}

TEST_F(RoomTest, LowerHandsLowersEveryHand) {
  Member& a = join("a");
  Member& b = join("b");
  join("c");
  apply_ok(a, P().hand(true));
  apply_ok(b, P().hand(true).x(0.5));
  publish();
  room.lower_hands();
  const Delta d = delta();
  EXPECT_EQ(d.updated.size(), 2u) << d.text;  // c's hand was down already
  for (const char* id : {"a", "b"}) {
    const Json& u = d.updated.at(id);
    EXPECT_EQ(u.keys(), Keys({"user_id", "hand", "hand_at"}));
    EXPECT_FALSE(u.at("hand").flag());
    EXPECT_EQ(u.at("hand_at").whole(), 0);
  }
  room.lower_hands();
  expect_no_delta();
}

// ---- status

TEST_F(RoomTest, ChosenBusyOrAwayOutlastsIdleAndAwayTimes) {
  Member& a = join("a");
  Member& b = join("b");
  apply_ok(a, P().status(UserStatus::kBusy));
  apply_ok(b, P().status(UserStatus::kAway));
  publish();
  room.sweep(kT0 + kRules.idle_after_ms);
  expect_no_delta();
  room.sweep(kT0 + kRules.away_after_ms * 10);
  expect_no_delta();
  const Members m = members();
  EXPECT_EQ(m.at("a").at("status").str(), "busy");
  EXPECT_EQ(m.at("b").at("status").str(), "away");
}

TEST_F(RoomTest, ChosenOnlineGoesIdleThenAway) {
  join("a");
  publish();
  EXPECT_FALSE(room.sweep(kT0 + kRules.idle_after_ms - 1));
  expect_no_delta();
  EXPECT_FALSE(room.sweep(kT0 + kRules.idle_after_ms));
  Delta d = delta();
  EXPECT_EQ(d.updated.at("a").keys(), Keys({"user_id", "status"}));
  EXPECT_EQ(d.updated.at("a").at("status").str(), "idle");
  room.sweep(kT0 + kRules.away_after_ms - 1);
  expect_no_delta();
  room.sweep(kT0 + kRules.away_after_ms);
  d = delta();
  EXPECT_EQ(d.updated.at("a").keys(), Keys({"user_id", "status"}));
  EXPECT_EQ(d.updated.at("a").at("status").str(), "away");
  EXPECT_TRUE(room.has_member("a"));  // inactivity never removes a member
}

TEST_F(RoomTest, ActivityRestoresTheChosenStatus) {
  Member& a = join("a");
  Member& b = join("b");
  apply_ok(b, P().status(UserStatus::kBusy));
  apply_ok(b, P().status(UserStatus::kOnline));  // b's last choice: online
  publish();
  room.sweep(kT0 + kRules.away_after_ms);
  publish();
  now = kT0 + kRules.away_after_ms + 1;
  room.activity(a, now);  // a chat message
  apply_ok(b, P().x(0.5));
  const Delta d = delta();
  EXPECT_EQ(d.updated.at("a").keys(), Keys({"user_id", "status"}));
  EXPECT_EQ(d.updated.at("a").at("status").str(), "online");
  EXPECT_EQ(d.updated.at("b").keys(), Keys({"user_id", "x", "status"}));
  EXPECT_EQ(d.updated.at("b").at("status").str(), "online");
}

TEST_F(RoomTest, IdleTimeCountsFromTheLastActivity) {
  Member& a = join("a");
  publish();
  now = kT0 + 50000;
  room.activity(a, now);
  expect_no_delta();  // already online
  room.sweep(kT0 + kRules.idle_after_ms);
  expect_no_delta();
  room.sweep(now + kRules.idle_after_ms);
  EXPECT_EQ(delta().updated.at("a").at("status").str(), "idle");
}

// ---- the chat bucket of a user who leaves and comes back

TEST_F(RoomTest, ChatBucketOutlivesALeaveUntilItWouldBeFull) {
  Member& a = join("a");
  a.chat_tokens = 0.5;  // spent
  a.chat_refill_ms = now;
  room.detach(a, /*client_closed=*/true, now);
  publish();  // a is gone
  EXPECT_FALSE(room.has_member("a"));
  Member& back = join("a");
  EXPECT_EQ(back.chat_tokens, 0.5);
  EXPECT_EQ(back.chat_refill_ms, now);
  // Kept until it would be full again, then forgotten: that return starts full.
  room.detach(back, true, now);
  publish();
  room.compact(now + kRules.chat_refill_ms - 1);
  Member& soon = join("a");
  EXPECT_EQ(soon.chat_tokens, 0.5);
  room.detach(soon, true, now);
  publish();
  room.compact(now + kRules.chat_refill_ms);
  EXPECT_LT(join("a").chat_tokens, 0) << "not started: starts full";
}

TEST(LeftBuckets, PruneForgetsTheOnesFullAgain) {
  LeftBuckets b{{"a", {0, 1000}}, {"b", {3, 2500}}};
  prune_left_buckets(b, 3000, 2000);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_TRUE(b.count("b"));
}

// ---- when the next timer falls due (the shard sweeps a room only then)

TEST_F(RoomTest, NextTimerFollowsIdleThenAway) {
  EXPECT_EQ(room.next_timer_ms(), INT64_MAX);  // no member, no timer
  join("a");
  EXPECT_EQ(room.next_timer_ms(), kT0 + kRules.idle_after_ms);
  publish();
  room.sweep(kT0 + kRules.idle_after_ms);
  EXPECT_EQ(delta().updated.at("a").at("status").str(), "idle");
  EXPECT_EQ(room.next_timer_ms(), kT0 + kRules.away_after_ms);
  room.sweep(kT0 + kRules.away_after_ms);
  EXPECT_EQ(delta().updated.at("a").at("status").str(), "away");
  EXPECT_EQ(room.next_timer_ms(), INT64_MAX);  // away until the next activity
}

TEST_F(RoomTest, NextTimerIsTheEarliestMember) {
  join("a");
  now = kT0 + 1000;
  Member& b = join("b");
  now = kT0 + 2000;
  room.activity(b, now);
  EXPECT_EQ(room.next_timer_ms(), kT0 + kRules.idle_after_ms);  // a's
  room.sweep(kT0 + kRules.idle_after_ms);
  // a went idle; b's idle time counts from its last activity.
  EXPECT_EQ(room.next_timer_ms(), now + kRules.idle_after_ms);
}

TEST_F(RoomTest, NextTimerSkipsChosenStatusesUntilOnlineIsChosenAgain) {
  Member& a = join("a");
  apply_ok(a, P().status(UserStatus::kBusy));
  room.sweep(room.next_timer_ms());  // finds nothing to do: busy has no timer
  EXPECT_EQ(room.next_timer_ms(), INT64_MAX);
  now = kT0 + 5000;
  apply_ok(a, P().status(UserStatus::kOnline));
  EXPECT_EQ(room.next_timer_ms(), now + kRules.idle_after_ms);
}

TEST_F(RoomTest, NextTimerComesForwardForAReconnectGrace) {
  Member& a = join("a");
  publish();
  now = kT0 + 100;
  room.detach(a, /*client_closed=*/false, now);
  EXPECT_EQ(room.next_timer_ms(), now + kRules.leave_grace_ms);
  publish();
  EXPECT_TRUE(room.sweep(now + kRules.leave_grace_ms));
  EXPECT_FALSE(room.has_member("a"));
  EXPECT_EQ(room.next_timer_ms(), INT64_MAX);
}

TEST_F(RoomTest, SweepBeforeTheNextTimerChangesNothing) {
  // Members with every kind of timer, then a sweep at every second up to
  // the last of them: a sweep before next_timer_ms() never has work, and one
  // at it always does (the room's timers are exact after a sweep).
  Member& a = join("a");
  now = kT0 + 700;
  Member& b = join("b");
  now = kT0 + 1300;
  join("c");
  room.detach(b, /*client_closed=*/false, now);
  now = kT0 + 2900;
  room.activity(a, now);
  publish();
  int swept_with_work = 0;
  for (std::int64_t t = now; t <= now + kRules.away_after_ms + 5000; t += 250) {
    const std::int64_t due = room.next_timer_ms();
    const bool leaves = room.sweep(t);
    const bool changed = leaves || room.dirty();
    if (t < due) {
      EXPECT_FALSE(changed) << "at " << t << ", due " << due;
    }
    if (changed) {
      ++swept_with_work;
      publish();
    }
  }
  // b left after its grace; a and c went idle, then away.
  EXPECT_EQ(swept_with_work, 5);
  EXPECT_EQ(room.next_timer_ms(), INT64_MAX);
}

TEST_F(RoomTest, IdleAndBackInOneTickIsNoChange) {
  Member& a = join("a");
  publish();
  room.sweep(kT0 + kRules.idle_after_ms);
  room.activity(a, kT0 + kRules.idle_after_ms);
  expect_no_delta();
}

// ---- name

TEST_F(RoomTest, RenameAllowedWhenMayRename) {
  Member& a = join("a");
  publish();
  apply_ok(a, P().name("Ada"));
  const Delta d = delta();
  EXPECT_EQ(d.updated.at("a").keys(), Keys({"user_id", "name"}));
  EXPECT_EQ(d.updated.at("a").at("name").str(), "Ada");
  EXPECT_EQ(members().at("a").at("name").str(), "Ada");
}

TEST_F(RoomTest, RenameRefusedChangesNothing) {
  Member& a = room.attach(person("a", Role::kStudent, /*may_rename=*/false), now);
  publish();
  room.sweep(kT0 + kRules.idle_after_ms);  // idle: a refused message is no activity
  publish();
  const Status st =
      room.apply(a, P().name("Eve").x(0.5).hand(true).emoji("x").status(UserStatus::kBusy),
                 now + kRules.idle_after_ms, wall);
  EXPECT_FALSE(st.is_ok());
  EXPECT_FALSE(st.message().empty());
  EXPECT_FALSE(room.dirty());
  expect_no_delta();
  const Json m = members().at("a");
  EXPECT_EQ(m.at("name").str(), "name of a");
  EXPECT_EQ(m.at("x").number(), 0);
  EXPECT_FALSE(m.at("hand").flag());
  EXPECT_EQ(m.at("emoji").str(), "");
  EXPECT_EQ(m.at("status").str(), "idle");
  // Without the name the same update is accepted.
  apply_ok(a, P().x(0.5));
  EXPECT_EQ(delta().updated.at("a").at("x").number(), 0.5);
}

// ---- tick, welcome members, member count

TEST_F(RoomTest, TickGrowsByOnePerDeltaAndPerSync) {
  EXPECT_EQ(room.tick(), 0u);
  Member& a = join("a");
  EXPECT_EQ(delta().tick, 1u);
  EXPECT_EQ(room.tick(), 1u);
  apply_ok(a, P().x(0.5));
  EXPECT_EQ(delta().tick, 2u);
  expect_no_delta();
  std::string out;
  room.build_sync(out, nullptr);
  EXPECT_EQ(room.tick(), 3u);
  const Json sync = parse(out);
  EXPECT_EQ(sync.keys(), Keys({"type", "tick", "members"}));
  EXPECT_EQ(sync.at("type").str(), "sync");
  EXPECT_EQ(sync.at("tick").whole(), 3);
  const Members listed = index_members(sync.at("members"), "sync");
  EXPECT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed.at("a").at("x").number(), 0.5);
  apply_ok(a, P().x(0.25));
  EXPECT_EQ(delta().tick, 4u);
  EXPECT_EQ(room.tick(), 4u);
}

TEST_F(RoomTest, WelcomeMembersAreEveryPresentMember) {
  join("a");
  join("b");
  Member& c = join("c");
  Member& d = join("d");
  join("d");  // a second device
  publish();
  room.detach(c, /*client_closed=*/true, now);   // c leaves
  room.detach(d, /*client_closed=*/true, now);   // one of d's two devices
  room.detach(d, /*client_closed=*/false, now);  // d drops: in grace
  Member& e = join("e");                         // not yet announced
  apply_ok(e, P().y(0.75));
  const Members m = members();
  EXPECT_EQ(m.size(), 4u);
  EXPECT_TRUE(m.count("a") && m.count("b") && m.count("d") && m.count("e"));
  EXPECT_FALSE(m.count("c"));
  EXPECT_FALSE(m.at("d").at("connected").flag());
  EXPECT_EQ(m.at("d").at("devices").whole(), 0);
  EXPECT_EQ(m.at("e").at("y").number(), 0.75);
  publish();
  EXPECT_EQ(members().size(), 4u);
}

TEST_F(RoomTest, WhatAWelcomeShowedUnpublishedTheNextDeltaTells) {
  Member& a = join("a");
  Member& b = join("b");
  publish();
  apply_ok(a, P().x(0.5));
  Member& g = join("g");
  members();                  // someone's welcome: a at 0.5, g present
  apply_ok(a, P().x(0));      // back at its published value
  room.detach(g, true, now);  // joined and left within the tick
  apply_ok(b, P().x(0.3));
  apply_ok(b, P().x(0));  // b's change was never shown: coalesced away
  const Delta d = delta();
  EXPECT_EQ(d.updated.at("a").keys(), Keys({"user_id", "x"}));
  EXPECT_FALSE(d.updated.count("b")) << d.text;
  EXPECT_EQ(d.left, std::vector<std::string>{"g"});
  EXPECT_TRUE(d.joined.empty()) << d.text;
  // Only for that tick: the next one coalesces as usual.
  apply_ok(a, P().x(0.2));
  apply_ok(a, P().x(0));
  expect_no_delta();
}

TEST_F(RoomTest, WelcomeMidTickThenTheDeltaIsTheRoom) {
  // A change the tick undoes, and a member who joins and leaves within it,
  // are in no delta: a welcome or sync must not show them either.
  Member& a = join("a");
  apply_ok(a, P().x(0.1));
  publish();
  apply_ok(a, P().y(0.9));
  apply_ok(a, P().x(0.5));
  Member& g = join("g");
  Member& n = join("n");
  Members model = members(&n);
  room.detach(g, /*client_closed=*/true, now);
  apply_ok(a, P().x(0.1));
  apply_delta(model, delta());
  publish();
  expect_same(model, members());
}

TEST_F(RoomTest, ANewDeviceSeesItsMemberNowAndTheDeltaCarriesWhatItSaw) {
  Member& a = join("a");
  apply_ok(a, P().x(0.1));
  Member& b = join("b");
  publish();
  apply_ok(a, P().x(0.5));
  Member& a2 = join("a");  // a's second device: its welcome shows a as it is now
  Members model = members(&a2);
  EXPECT_EQ(model.at("a").at("devices").whole(), 2);
  EXPECT_EQ(model.at("a").at("x").number(), 0.5);
  apply_ok(a, P().x(0.1));  // back at its published value within the tick
  const Delta d = delta();
  // x went out although it ended where it started: this welcome showed 0.5.
  EXPECT_EQ(d.updated.at("a").keys(), Keys({"user_id", "x", "devices"}));
  apply_delta(model, d);
  expect_same(model, members());
  // Only for that tick: the next one coalesces as usual.
  apply_ok(b, P().x(0.3));
  apply_ok(b, P().x(0));
  expect_no_delta();
}

TEST_F(RoomTest, EveryWelcomeAndSyncPlusTheLaterDeltasIsTheRoom) {
  // Random joins, leaves, drops and updates over many ticks; welcomes and
  // syncs at random moments inside ticks. Every receiver's model, built from
  // its list and the deltas after it, must end equal to the room.
  std::mt19937 rng(20261123);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  std::vector<Member*> devices;  // one entry per attached session
  std::vector<Members> models;
  for (int step = 0; step < 3000; ++step) {
    now += 7;
    wall += 7;
    const int op = pick(10);
    if (op < 3 || devices.empty()) {
      Member& m = join(fmt::format("u{}", pick(8)));
      devices.push_back(&m);
      if (pick(3) == 0) models.push_back(members(&m));  // its welcome
    } else if (op < 5) {
      const std::size_t i = static_cast<std::size_t>(pick(static_cast<int>(devices.size())));
      room.detach(*devices[i], /*client_closed=*/pick(2) == 0, now);
      devices.erase(devices.begin() + static_cast<std::ptrdiff_t>(i));
    } else if (op < 9) {
      Member& m = *devices[static_cast<std::size_t>(pick(static_cast<int>(devices.size())))];
      apply_ok(m, P().x(pick(3) * 0.25).hand(pick(2) == 0).emoji(pick(2) ? "" : "👍"));
    } else if (!devices.empty()) {
      Member& m = *devices[static_cast<std::size_t>(pick(static_cast<int>(devices.size())))];
      std::string out;
      room.build_sync(out, &m);
      const Json sync = parse(out);
      models.push_back(index_members(sync.at("members"), "sync"));
    }
    if (pick(6) == 0) {
      std::string out;
      if (room.build_delta(out)) {
        const Delta d = parse_delta(out);
        for (Members& model : models) apply_delta(model, d);
      }
    }
  }
  std::string out;
  if (room.build_delta(out)) {
    const Delta d = parse_delta(out);
    for (Members& model : models) apply_delta(model, d);
  }
  ASSERT_GT(models.size(), 100u);
  const Members truth = members();
  for (const Members& model : models) expect_same(model, truth);
}

TEST_F(RoomTest, MemberCountExcludesLeaversAndIncludesGrace) {
  Member& a = join("a");
  Member& b = join("b");
  Member& c = join("c");
  join("c");
  EXPECT_EQ(room.member_count(), 3u);
  room.detach(a, /*client_closed=*/true, now);
  EXPECT_EQ(room.member_count(), 2u);  // before the delta already
  room.detach(b, /*client_closed=*/false, now);
  EXPECT_EQ(room.member_count(), 2u);  // b is in grace
  room.detach(c, /*client_closed=*/true, now);
  EXPECT_EQ(room.member_count(), 2u);  // c has another device
  publish();
  EXPECT_EQ(room.member_count(), 2u);
  EXPECT_TRUE(room.sweep(kT0 + kRules.leave_grace_ms));
  EXPECT_EQ(room.member_count(), 1u);
}

// ---- the key set of an updated entry

TEST_F(RoomTest, UpdatedEntriesCarryUserIdAndChangedFieldsOnly) {
  Member& a = join("a");
  publish();
  struct Step {
    Presence p;
    Keys keys;
  };
  const Step steps[] = {
      {P().x(0.5), {"user_id", "x"}},
      {P().y(0.5), {"user_id", "y"}},
      {P().emoji("👍"), {"user_id", "emoji"}},
      {P().hand(true), {"user_id", "hand", "hand_at"}},
      {P().status(UserStatus::kBusy), {"user_id", "status"}},
      {P().status_text("lab"), {"user_id", "status_text"}},
      {P().name("Ada"), {"user_id", "name"}},
      {P().x(0.5).y(0.5).emoji("👍").hand(true).status(UserStatus::kBusy).status_text("lab"),
       {"user_id"}},  // all as they are: no delta
      {P().x(1).y(0), {"user_id", "x", "y"}},
  };
  for (const Step& s : steps) {
    apply_ok(a, s.p);
    if (s.keys.size() == 1) {
      expect_no_delta();
      continue;
    }
    const Delta d = delta();
    EXPECT_EQ(d.updated.at("a").keys(), s.keys) << d.text;
  }
  join("a");
  EXPECT_EQ(delta().updated.at("a").keys(), Keys({"user_id", "devices"}));
  room.detach(a, true, now);
  room.detach(a, false, now);
  EXPECT_EQ(delta().updated.at("a").keys(), Keys({"user_id", "devices", "connected"}));
}

}  // namespace
}  // namespace rc::rooms
