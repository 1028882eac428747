// rollcall-log: the operator's view of the chat log (docs/PERSISTENCE.md).
//
//   rollcall-log --data-dir D [--chat-key-file K] rooms
//   rollcall-log --data-dir D dump ROOM [--after S] [--limit N]
//   rollcall-log --data-dir D export [ROOM]          (JSON lines on stdout)
//   rollcall-log --data-dir D verify                 (exit 1 on a problem)
//   rollcall-log --data-dir D compact OUT_DIR
//
// Every command opens the log read-only (it never creates a key or a log)
// and reads one consistent snapshot in one LMDB read transaction, so all of
// them, compact included, are safe while a server writes to the same log.
// Exit status: 0 done, 1 verify found a problem, 2 bad usage or the log did
// not open (missing log, wrong key, ...).

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <system_error>

#include "persist/log_store.h"
#include "protocol/json_writer.h"

namespace {

using rc::persist::ChatMessage;
using rc::persist::LogStore;
using rc::persist::OpenError;
using rc::persist::Reader;

constexpr int kExitProblem = 1;
constexpr int kExitUsage = 2;

struct Args {
  std::string data_dir = "./data";
  std::string key_file;
  std::string room;
  std::uint64_t after = 0;
  std::uint64_t limit = 0;  // 0: no limit
  std::string out_dir;
};

void print(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
}

std::string utc_ms(std::int64_t ts_ms) {
  const std::time_t secs = static_cast<std::time_t>(ts_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ts_ms % 1000));
}

// One message per line: control characters are shown escaped (\n, \x07).
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

int rooms(Reader& reader) {
  auto list = reader.rooms();
  if (!list) {
    fmt::print(stderr, "rollcall-log: {}\n", list.status().message());
    return kExitUsage;
  }
  print(fmt::format("{:<64} {:>12} {:>12} {:>12}\n", "room", "messages", "first_seq", "last_seq"));
  for (const auto& b : *list) {
    auto count = reader.count(b.room);
    print(fmt::format("{:<64} {:>12} {:>12} {:>12}\n", b.room, count ? *count : 0, b.first_seq,
                      b.last_seq));
  }
  return 0;
}

int dump(Reader& reader, const Args& args) {
  std::uint64_t shown = 0;
  auto visit = [&](std::uint64_t seq, OpenError err, const ChatMessage& m) {
    if (err != OpenError::kNone) {
      print(fmt::format("#{} <{}>\n", seq, rc::persist::open_error_text(err)));
    } else {
      print(fmt::format("#{} {} {} ({}){}: {}\n", seq, utc_ms(m.ts_ms), printable(m.name),
                        m.user_id,
                        m.client_id.empty() ? "" : fmt::format(" [{}]", printable(m.client_id)),
                        printable(m.text)));
    }
    return args.limit == 0 || ++shown < args.limit;
  };
  if (rc::Status s = reader.scan(args.room, args.after, visit); !s) {
    fmt::print(stderr, "rollcall-log: {}\n", s.message());
    return kExitUsage;
  }
  return 0;
}

int export_json(Reader& reader, const Args& args) {
  std::vector<std::string> rooms;
  if (!args.room.empty()) {
    rooms.push_back(args.room);
  } else {
    auto list = reader.rooms();
    if (!list) {
      fmt::print(stderr, "rollcall-log: {}\n", list.status().message());
      return kExitUsage;
    }
    for (auto& b : *list) rooms.push_back(std::move(b.room));
  }
  std::string line;
  int status = 0;
  for (const auto& room : rooms) {
    auto visit = [&](std::uint64_t seq, OpenError err, const ChatMessage& m) {
      if (err != OpenError::kNone) {
        status = kExitProblem;  // logged by the reader; never exported as garbage
        return true;
      }
      line.clear();
      rc::json::Writer w(line);
      w.begin_object()
          .field("room", std::string_view(room))
          .field("seq", seq)
          .field("ts", m.ts_ms)
          .field("user_id", std::string_view(m.user_id))
          .field("name", std::string_view(m.name))
          .field("text", std::string_view(m.text))
          .field("client_id", std::string_view(m.client_id))
          .end_object();
      line.push_back('\n');
      print(line);
      return true;
    };
    if (rc::Status s = reader.scan(room, 0, visit); !s) {
      fmt::print(stderr, "rollcall-log: {}\n", s.message());
      return kExitUsage;
    }
  }
  return status;
}

// Checks every room: seqs grow by exactly 1 from the oldest retained record,
// and every record decrypts.
int verify(Reader& reader) {
  auto list = reader.rooms();
  if (!list) {
    fmt::print(stderr, "rollcall-log: {}\n", list.status().message());
    return kExitUsage;
  }
  std::uint64_t problems = 0, total = 0;
  for (const auto& b : *list) {
    std::uint64_t expected = b.first_seq, count = 0, room_problems = 0;
    auto visit = [&](std::uint64_t seq, OpenError err, const ChatMessage&) {
      if (seq != expected) {
        print(fmt::format("{}: seq {} follows {} (gap)\n", b.room, seq, expected - 1));
        ++room_problems;
      }
      if (err != OpenError::kNone) {
        print(fmt::format("{}: seq {}: {}\n", b.room, seq, rc::persist::open_error_text(err)));
        ++room_problems;
      }
      expected = seq + 1;
      ++count;
      return true;
    };
    if (rc::Status s = reader.scan(b.room, b.first_seq - 1, visit); !s) {
      print(fmt::format("{}: {}\n", b.room, s.message()));
      ++room_problems;
    }
    print(fmt::format("{}: {} messages, seq {}..{}: {}\n", b.room, count, b.first_seq, b.last_seq,
                      room_problems == 0 ? "ok" : "PROBLEMS"));
    problems += room_problems;
    total += count;
  }
  print(fmt::format("{} rooms, {} messages, {} problems\n", list->size(), total, problems));
  return problems == 0 ? 0 : kExitProblem;
}

int compact(LogStore& store, const Args& args) {
  std::error_code ec;
  std::filesystem::create_directories(args.out_dir, ec);
  if (ec || !std::filesystem::is_empty(args.out_dir, ec)) {
    fmt::print(stderr, "rollcall-log: {} must be an empty (or new) directory\n", args.out_dir);
    return kExitUsage;
  }
  if (rc::Status s = store.env().copy_compact(args.out_dir); !s) {
    fmt::print(stderr, "rollcall-log: {}\n", s.message());
    return kExitUsage;
  }
  // The records are encrypted, but the copy is as private as the original.
  std::filesystem::permissions(
      std::filesystem::path(args.out_dir) / "data.mdb",
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
  print(fmt::format(
      "compacted copy written to {}/data.mdb; it opens with the same key ({}): copy the key file "
      "with it\n",
      args.out_dir, store.key_path()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rollcall-log: inspect, export, verify and compact the rollcall chat log"};
  Args args;
  app.add_option("--data-dir", args.data_dir, "The server's --data-dir")->capture_default_str();
  app.add_option("--chat-key-file", args.key_file, "The key file (default: <data-dir>/chat.key)");
  app.require_subcommand(1);
  CLI::App* rooms_cmd = app.add_subcommand("rooms", "List rooms with message count and last seq");
  CLI::App* dump_cmd = app.add_subcommand("dump", "Print a room's messages, oldest first");
  dump_cmd->add_option("room", args.room, "Room id")->required();
  dump_cmd->add_option("--after", args.after, "Only messages with seq > S");
  dump_cmd->add_option("--limit", args.limit, "At most N messages (0: all)");
  CLI::App* export_cmd = app.add_subcommand("export", "JSON lines, one message per line");
  export_cmd->add_option("room", args.room, "Only this room (default: every room)");
  CLI::App* verify_cmd =
      app.add_subcommand("verify", "Check seq continuity and that every record decrypts");
  CLI::App* compact_cmd =
      app.add_subcommand("compact", "Write a compacted copy of the log (mdb_env_copy2)");
  compact_cmd->add_option("out_dir", args.out_dir, "New or empty directory")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  if (!args.room.empty() && !rc::persist::valid_room_id(args.room)) {
    fmt::print(stderr, "rollcall-log: {:?} is not a room id (1-64 of [A-Za-z0-9_-])\n", args.room);
    return kExitUsage;
  }
  rc::persist::StoreOptions options;
  options.data_dir = args.data_dir;
  options.key_file = args.key_file;
  options.read_only = true;
  auto store = LogStore::open(options);
  if (!store) {
    fmt::print(stderr, "rollcall-log: {}\n", store.status().message());
    return kExitUsage;
  }
  if (compact_cmd->parsed()) return compact(**store, args);
  auto reader = (*store)->reader();
  if (!reader) {
    fmt::print(stderr, "rollcall-log: {}\n", reader.status().message());
    return kExitUsage;
  }
  if (rooms_cmd->parsed()) return rooms(*reader);
  if (dump_cmd->parsed()) return dump(*reader, args);
  if (export_cmd->parsed()) return export_json(*reader, args);
  if (verify_cmd->parsed()) return verify(*reader);
  return kExitUsage;
}
