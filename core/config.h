#pragma once
// The server's configuration: every operator flag of PROTOCOL.md section 7.
//
// Contract
// - parse_config() reads the command line and, for each flag --x-y not on it,
//   the environment variable ROLLCALL_X_Y (the command line wins). An empty
//   variable counts as unset.
// - It never exits, prints or throws: the outcome says whether to run, and
//   what to print with which exit status.
// - Every value is checked (ranges below, also listed by --help). Integers
//   are plain decimal digits: no sign, no hex, no spaces; out-of-range values
//   and overflow are errors. Boolean flags take no value on the command line
//   (--pin); from the environment they accept 1/0, true/false, yes/no, on/off.
//   Giving a flag twice is an error.
// - Call it from the main thread before other threads start: it reads the
//   environment.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"

namespace rc {

inline constexpr std::string_view kVersion = "0.1.0";

// Ranges of the flags that have one (all bounds inclusive).
namespace config_limits {
inline constexpr std::uint32_t tick_ms_max = 10000;
inline constexpr std::uint32_t chat_chars_max = 100000;
inline constexpr std::uint32_t history_on_join_max = 10000;
inline constexpr std::uint32_t session_timeout_s_min = 3;
inline constexpr std::uint64_t slow_client_bytes_min = 1024;
}  // namespace config_limits

struct Config {
  std::uint16_t port = 8080;        // --port, 1..65535
  std::string bind = "0.0.0.0";     // --bind, an address to listen on
  std::uint32_t threads = 0;        // --threads, 1..limits::shards_max; parse fills online CPUs
  bool pin = false;                 // --pin: pin shard thread i to core i
  std::uint32_t tick_ms = 50;       // --tick-ms, 1..10000
  std::string data_dir = "./data";  // --data-dir
  std::string chat_key_file;        // --chat-key-file; empty: <data-dir>/chat.key
  std::string jwt_secret_file;      // --jwt-secret-file; empty: no JWT accepted
  bool allow_anonymous = false;     // --allow-anonymous
  std::vector<std::string> allowed_origins;  // --allowed-origins "a,b"; empty: any origin
  std::uint32_t room_capacity = 100;         // --room-capacity, >= 1
  std::uint32_t queue_capacity = 100;        // --queue-capacity, >= 0
  std::uint32_t max_message_bytes = 8192;    // --max-message-bytes, limits::message_bytes_min..max
  std::uint32_t max_chat_chars = 2000;       // --max-chat-chars, 1..100000
  double chat_rate = 5;                      // --chat-rate, messages per second, > 0, finite
  std::uint32_t history_on_join = 200;       // --history-on-join, 0..10000
  std::uint64_t chat_retention = 100000;     // --chat-retention, messages per room, >= 1
  std::uint32_t idle_after_s = 60;           // --idle-after, >= 1
  std::uint32_t away_after_s = 180;          // --away-after, >= --idle-after
  std::uint32_t session_timeout_s = 90;      // --session-timeout, >= 3
  std::uint64_t slow_client_bytes = 262144;  // --slow-client-bytes, >= 1024
  std::uint64_t max_outbound_bytes = 4194304;  // --max-outbound-bytes, >= --slow-client-bytes
  std::uint32_t leave_grace_s = 15;            // --leave-grace; 0 disables the grace
  std::string tls_cert, tls_key;               // --tls-cert, --tls-key: both or neither
  std::uint32_t shutdown_grace_s = 5;          // --shutdown-grace
  LogLevel log_level = LogLevel::kInfo;        // --log-level debug|info|warn|error
};

struct ConfigOutcome {
  std::optional<Config> config;  // set when the server should run
  int exit_code = 0;  // when config is empty: 0 for --help/--version, 2 for a bad flag/value
  std::string text;   // what to print (help text, version, or the error naming the flag)
};

// Parses argv (argv[0] is the program name). See the contract above.
ConfigOutcome parse_config(int argc, const char* const* argv);

}  // namespace rc
