#include "core/config.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <thread>

#include "core/limits.h"

namespace rc {
namespace {

constexpr int kExitUsage = 2;
constexpr std::string_view kEnvPrefix = "ROLLCALL_";

// "--max-chat-chars" -> "ROLLCALL_MAX_CHAT_CHARS" (PROTOCOL section 7).
std::string env_name(std::string_view flag) {
  std::string name(kEnvPrefix);
  for (char c : flag.substr(2)) {
    name.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return name;
}

std::string range_text(std::uint64_t min, std::uint64_t max) {
  if (max == std::numeric_limits<std::uint64_t>::max() ||
      max == std::numeric_limits<std::uint32_t>::max()) {
    return fmt::format(">= {}", min);
  }
  return fmt::format("{}..{}", min, max);
}

// CLI11's own integer conversion accepts "0x10", reads "010" as octal and
// lets "-1" wrap around for 64-bit fields. This transform admits only plain
// decimal digits within [min, max] and rewrites the value without leading
// zeros, so the conversion that follows sees one canonical spelling.
CLI::Validator decimal_in(std::uint64_t min, std::uint64_t max) {
  auto check = [min, max](std::string& text) -> std::string {
    std::uint64_t value = 0;
    const char* end = text.data() + text.size();
    const auto [stop, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || stop != end || ec == std::errc::invalid_argument) {
      return fmt::format("'{}' is not a non-negative decimal integer", text);
    }
    if (ec == std::errc::result_out_of_range || value > max) {
      return fmt::format("{} is too large (at most {})", text, max);
    }
    if (value < min) return fmt::format("{} is too small (at least {})", text, min);
    text = std::to_string(value);
    return {};
  };
  return CLI::Validator(check, range_text(min, max), "decimal_in");
}

// Boolean flags: the bare flag, --pin=VALUE, or ROLLCALL_PIN=VALUE.
CLI::Validator boolean_word() {
  auto check = [](std::string& text) -> std::string {
    std::string word;
    for (char c : text)
      word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (word == "1" || word == "true" || word == "yes" || word == "on") {
      text = "true";
    } else if (word == "0" || word == "false" || word == "no" || word == "off") {
      text = "false";
    } else {
      return fmt::format("'{}' is not one of 1/0, true/false, yes/no, on/off", text);
    }
    return {};
  };
  return CLI::Validator(check, "", "boolean_word");
}

CLI::Validator positive_finite() {
  auto check = [](std::string& text) -> std::string {
    double value = 0;
    const char* end = text.data() + text.size();
    const auto [stop, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || stop != end || ec != std::errc() || !std::isfinite(value) || value <= 0) {
      return fmt::format("'{}' is not a finite number greater than 0", text);
    }
    return {};
  };
  return CLI::Validator(check, "> 0", "positive_finite");
}

// "a, b,,c" -> {"a", "b", "c"}.
std::vector<std::string> split_origins(std::string_view text) {
  std::vector<std::string> out;
  constexpr std::string_view kSpace = " \t\n\v\f\r";
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const std::size_t first = item.find_first_not_of(kSpace);
    if (first == std::string_view::npos) continue;
    item = item.substr(first, item.find_last_not_of(kSpace) - first + 1);
    out.emplace_back(item);
  }
  return out;
}

std::uint32_t online_cpus() {
  const unsigned n = std::thread::hardware_concurrency();
  if (n == 0) return 1;  // unknown
  return n > limits::shards_max ? limits::shards_max : n;
}

LogLevel level_from_name(const std::string& name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

// Holds the CLI11 application and the values its options write into.
class FlagParser {
 public:
  FlagParser();
  ConfigOutcome parse(int argc, const char* const* argv);

 private:
  CLI::Option* add_text(const std::string& flag, std::string& field, std::string help);
  CLI::Option* add_switch(const std::string& flag, bool& field, std::string help);
  template <typename T>
  CLI::Option* add_unsigned(const std::string& flag, T& field, std::uint64_t min, std::uint64_t max,
                            std::string help);
  void add_network_flags();
  void add_room_flags();
  void add_session_flags();
  void add_operation_flags();
  std::string check_relations() const;
  std::string name_source(const std::string& message, int argc, const char* const* argv) const;

  CLI::App app_;
  Config config_;
  std::string origins_;
  std::string level_ = "info";
};

FlagParser::FlagParser()
    : app_("rollcall: live classroom presence and chat over WebSocket.", "rollcall") {
  app_.set_version_flag("--version", fmt::format("rollcall {}", kVersion),
                        "Print the version and exit");
  app_.footer(
      "Every flag --x-y can also be set with the environment variable ROLLCALL_X_Y\n"
      "(for example ROLLCALL_TICK_MS=20); a flag on the command line beats the variable.\n"
      "Boolean variables accept 1/0, true/false, yes/no, on/off.");
  add_network_flags();
  add_room_flags();
  add_session_flags();
  add_operation_flags();
}

CLI::Option* FlagParser::add_text(const std::string& flag, std::string& field, std::string help) {
  return app_.add_option(flag, field, std::move(help))->envname(env_name(flag));
}

CLI::Option* FlagParser::add_switch(const std::string& flag, bool& field, std::string help) {
  return app_.add_flag(flag, field, std::move(help))
      ->envname(env_name(flag))
      ->transform(boolean_word());
}

template <typename T>
CLI::Option* FlagParser::add_unsigned(const std::string& flag, T& field, std::uint64_t min,
                                      std::uint64_t max, std::string help) {
  return app_.add_option(flag, field, std::move(help))
      ->envname(env_name(flag))
      ->type_name("UINT")
      ->transform(decimal_in(min, max));
}

void FlagParser::add_network_flags() {
  Config& c = config_;
  add_unsigned("--port", c.port, 1, 65535, "TCP port to listen on")->capture_default_str();
  add_text("--bind", c.bind, "Address to listen on")->capture_default_str();
  add_unsigned("--threads", c.threads, 1, limits::shards_max,
               "Shard threads, each with its own io_uring and rooms [default: online CPUs]");
  add_switch("--pin", c.pin, "Pin shard thread i to CPU core i");
  add_text("--allowed-origins", origins_,
           "Comma-separated Origin allow-list for browsers; requests without Origin are allowed "
           "[default: any origin]");
  add_text("--tls-cert", c.tls_cert, "PEM certificate chain; with --tls-key the port speaks TLS");
  add_text("--tls-key", c.tls_key, "PEM private key; with --tls-cert the port speaks TLS");
}

void FlagParser::add_room_flags() {
  Config& c = config_;
  add_unsigned("--tick-ms", c.tick_ms, 1, config_limits::tick_ms_max,
               "Presence coalescing period in milliseconds")
      ->capture_default_str();
  add_unsigned("--room-capacity", c.room_capacity, 1, std::numeric_limits<std::uint32_t>::max(),
               "Distinct users admitted to one room (teachers always are)")
      ->capture_default_str();
  add_unsigned("--queue-capacity", c.queue_capacity, 0, std::numeric_limits<std::uint32_t>::max(),
               "Sessions that may wait for a full room; 0 turns the queue off")
      ->capture_default_str();
  add_unsigned("--max-chat-chars", c.max_chat_chars, 1, config_limits::chat_chars_max,
               "Longest chat text in characters (code points) after trimming")
      ->capture_default_str();
  app_.add_option("--chat-rate", c.chat_rate,
                  "Chat messages per second per user and room (burst: twice this)")
      ->envname(env_name("--chat-rate"))
      ->type_name("NUMBER")
      ->check(positive_finite())
      ->capture_default_str();
  add_unsigned("--history-on-join", c.history_on_join, 0, config_limits::history_on_join_max,
               "Chat messages sent in the welcome")
      ->capture_default_str();
  add_unsigned("--chat-retention", c.chat_retention, 1, std::numeric_limits<std::uint64_t>::max(),
               "Chat messages kept per room; older ones are removed in the background")
      ->capture_default_str();
}

void FlagParser::add_session_flags() {
  Config& c = config_;
  add_unsigned("--max-message-bytes", c.max_message_bytes, limits::message_bytes_min,
               limits::message_bytes_max, "Largest WebSocket message accepted, in bytes")
      ->capture_default_str();
  add_unsigned("--idle-after", c.idle_after_s, 1, std::numeric_limits<std::uint32_t>::max(),
               "Seconds without activity before a member's status becomes idle")
      ->capture_default_str();
  add_unsigned("--away-after", c.away_after_s, 1, std::numeric_limits<std::uint32_t>::max(),
               "Seconds without activity before it becomes away; at least --idle-after")
      ->capture_default_str();
  add_unsigned("--session-timeout", c.session_timeout_s, config_limits::session_timeout_s_min,
               std::numeric_limits<std::uint32_t>::max(),
               "Seconds without any frame before a session is closed as dead")
      ->capture_default_str();
  add_unsigned("--slow-client-bytes", c.slow_client_bytes, config_limits::slow_client_bytes_min,
               std::numeric_limits<std::uint64_t>::max(),
               "Unsent bytes past which a session stops getting deltas (sync when drained)")
      ->capture_default_str();
  add_unsigned("--max-outbound-bytes", c.max_outbound_bytes, config_limits::slow_client_bytes_min,
               std::numeric_limits<std::uint64_t>::max(),
               "Unsent chat bytes past which a session is closed (1008); at least "
               "--slow-client-bytes")
      ->capture_default_str();
  add_unsigned("--leave-grace", c.leave_grace_s, 0, std::numeric_limits<std::uint32_t>::max(),
               "Seconds a dropped member stays in the room, disconnected; 0 disables")
      ->capture_default_str();
}

void FlagParser::add_operation_flags() {
  Config& c = config_;
  add_text("--data-dir", c.data_dir, "Directory of the chat log and the generated chat key")
      ->capture_default_str();
  add_text("--chat-key-file", c.chat_key_file,
           "AES-256 key for chat at rest: 32 raw bytes or 64 hex digits "
           "[default: <data-dir>/chat.key, created on first start]");
  add_text("--jwt-secret-file", c.jwt_secret_file,
           "HS256 secret for bearer tokens (trailing whitespace removed) [default: none]");
  add_switch("--allow-anonymous", c.allow_anonymous,
             "Admit sessions without a token (?user_id=U&name=N)");
  add_unsigned("--shutdown-grace", c.shutdown_grace_s, 0, std::numeric_limits<std::uint32_t>::max(),
               "Seconds after SIGTERM/SIGINT before the process exits at the latest")
      ->capture_default_str();
  add_text("--log-level", level_, "Lowest level logged")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
}

// The checks that involve two flags, which CLI11 validators cannot see.
std::string FlagParser::check_relations() const {
  const Config& c = config_;
  if (c.away_after_s < c.idle_after_s) {
    return fmt::format("--away-after ({}) must be at least --idle-after ({})", c.away_after_s,
                       c.idle_after_s);
  }
  if (c.max_outbound_bytes < c.slow_client_bytes) {
    return fmt::format("--max-outbound-bytes ({}) must be at least --slow-client-bytes ({})",
                       c.max_outbound_bytes, c.slow_client_bytes);
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return c.tls_cert.empty() ? "--tls-key needs --tls-cert" : "--tls-cert needs --tls-key";
  }
  return {};
}

// CLI11 names the flag in its errors; when the bad value came from the
// environment, the operator also needs to know which variable to fix.
std::string FlagParser::name_source(const std::string& message, int argc,
                                    const char* const* argv) const {
  for (const CLI::Option* opt : app_.get_options()) {
    const std::string flag = opt->get_name();
    if (flag.rfind("--", 0) != 0 || message.rfind(flag + ":", 0) != 0) continue;
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      if (arg == flag || arg.rfind(flag + "=", 0) == 0) return {};
    }
    const std::string variable = env_name(flag);
    const char* value = std::getenv(variable.c_str());
    if (value != nullptr && *value != '\0') return fmt::format(" (from {})", variable);
  }
  return {};
}

ConfigOutcome FlagParser::parse(int argc, const char* const* argv) {
  ConfigOutcome outcome;
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help or --version
      std::ostringstream out, err;
      app_.exit(e, out, err);
      outcome.text = out.str() + err.str();
      return outcome;
    }
    outcome.exit_code = kExitUsage;
    outcome.text = fmt::format("rollcall: {}{}\nRun with --help for more information.\n", e.what(),
                               name_source(e.what(), argc, argv));
    return outcome;
  }
  if (std::string problem = check_relations(); !problem.empty()) {
    outcome.exit_code = kExitUsage;
    outcome.text = fmt::format("rollcall: {}\nRun with --help for more information.\n", problem);
    return outcome;
  }
  if (config_.threads == 0) config_.threads = online_cpus();
  config_.allowed_origins = split_origins(origins_);
  config_.log_level = level_from_name(level_);
  outcome.config = std::move(config_);
  return outcome;
}

}  // namespace

ConfigOutcome parse_config(int argc, const char* const* argv) {
  FlagParser parser;
  return parser.parse(argc, argv);
}

}  // namespace rc
