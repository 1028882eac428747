#include "core/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/limits.h"

namespace rc {
namespace {

// Every flag of PROTOCOL.md section 7.
const std::vector<std::string> kFlags = {"--port",
                                         "--bind",
                                         "--threads",
                                         "--pin",
                                         "--tick-ms",
                                         "--data-dir",
                                         "--chat-key-file",
                                         "--jwt-secret-file",
                                         "--allow-anonymous",
                                         "--allowed-origins",
                                         "--room-capacity",
                                         "--queue-capacity",
                                         "--max-message-bytes",
                                         "--max-chat-chars",
                                         "--chat-rate",
                                         "--history-on-join",
                                         "--chat-retention",
                                         "--idle-after",
                                         "--away-after",
                                         "--session-timeout",
                                         "--slow-client-bytes",
                                         "--max-outbound-bytes",
                                         "--leave-grace",
                                         "--tls-cert",
                                         "--tls-key",
                                         "--shutdown-grace",
                                         "--log-level"};

std::string env_for(const std::string& flag) {
  std::string name = "ROLLCALL_";
  for (char c : flag.substr(2)) name.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return name;
}

// Clears every ROLLCALL_* variable for the test and puts the old values back
// afterwards, so tests neither see nor leak environment settings.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& flag : kFlags) {
      const std::string name = env_for(flag);
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      unsetenv(name.c_str());
    }
  }
  void TearDown() override {
    for (const auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }
  static void set(const std::string& name, const std::string& value) {
    setenv(name.c_str(), value.c_str(), 1);
  }
  static ConfigOutcome parse(std::vector<std::string> args) {
    args.insert(args.begin(), "rollcall");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    return parse_config(static_cast<int>(args.size()), argv.data());
  }
  static Config parse_ok(std::vector<std::string> args) {
    ConfigOutcome out = parse(std::move(args));
    EXPECT_TRUE(out.config.has_value()) << out.text;
    EXPECT_EQ(out.exit_code, 0);
    return out.config.value_or(Config{});
  }
  // The outcome must be "exit 2" with a message naming `flag`.
  static void expect_rejected(std::vector<std::string> args, const std::string& flag) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    const ConfigOutcome out = parse(std::move(args));
    EXPECT_FALSE(out.config.has_value()) << joined;
    EXPECT_EQ(out.exit_code, 2) << joined;
    EXPECT_NE(out.text.find(flag), std::string::npos) << joined << "-> " << out.text;
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

std::uint32_t expected_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return std::clamp<std::uint32_t>(n, 1, limits::shards_max);
}

TEST_F(ConfigTest, DefaultsMatchTheProtocol) {
  const Config c = parse_ok({});
  EXPECT_EQ(c.port, 8080);
  EXPECT_EQ(c.bind, "0.0.0.0");
  EXPECT_EQ(c.threads, expected_threads());
  EXPECT_GE(c.threads, 1u);
  EXPECT_FALSE(c.pin);
  EXPECT_EQ(c.tick_ms, 50u);
  EXPECT_EQ(c.data_dir, "./data");
  EXPECT_EQ(c.chat_key_file, "");
  EXPECT_EQ(c.jwt_secret_file, "");
  EXPECT_FALSE(c.allow_anonymous);
  EXPECT_TRUE(c.allowed_origins.empty());
  EXPECT_EQ(c.room_capacity, 100u);
  EXPECT_EQ(c.queue_capacity, 100u);
  EXPECT_EQ(c.max_message_bytes, 8192u);
  EXPECT_EQ(c.max_chat_chars, 2000u);
  EXPECT_EQ(c.chat_rate, 5.0);
  EXPECT_EQ(c.history_on_join, 200u);
  EXPECT_EQ(c.chat_retention, 100000u);
  EXPECT_EQ(c.idle_after_s, 60u);
  EXPECT_EQ(c.away_after_s, 180u);
  EXPECT_EQ(c.session_timeout_s, 90u);
  EXPECT_EQ(c.slow_client_bytes, 262144u);
  EXPECT_EQ(c.max_outbound_bytes, 4194304u);
  EXPECT_EQ(c.leave_grace_s, 15u);
  EXPECT_EQ(c.tls_cert, "");
  EXPECT_EQ(c.tls_key, "");
  EXPECT_EQ(c.shutdown_grace_s, 5u);
  EXPECT_EQ(c.log_level, LogLevel::kInfo);
}

// Non-default values for every flag, as (flag, value) pairs; switches have no value.
const std::vector<std::pair<std::string, std::string>> kEveryFlag = {
    {"--port", "9123"},
    {"--bind", "127.0.0.1"},
    {"--threads", "3"},
    {"--pin", ""},
    {"--tick-ms", "20"},
    {"--data-dir", "/var/lib/rollcall"},
    {"--chat-key-file", "/etc/rollcall/chat.key"},
    {"--jwt-secret-file", "/etc/rollcall/jwt"},
    {"--allow-anonymous", ""},
    {"--allowed-origins", "https://a.example,https://b.example"},
    {"--room-capacity", "30"},
    {"--queue-capacity", "0"},
    {"--max-message-bytes", "65536"},
    {"--max-chat-chars", "500"},
    {"--chat-rate", "2.5"},
    {"--history-on-join", "0"},
    {"--chat-retention", "5000000000"},
    {"--idle-after", "30"},
    {"--away-after", "90"},
    {"--session-timeout", "12"},
    {"--slow-client-bytes", "4096"},
    {"--max-outbound-bytes", "8192"},
    {"--leave-grace", "0"},
    {"--tls-cert", "cert.pem"},
    {"--tls-key", "key.pem"},
    {"--shutdown-grace", "9"},
    {"--log-level", "debug"},
};

void expect_every_flag_applied(const Config& c) {
  EXPECT_EQ(c.port, 9123);
  EXPECT_EQ(c.bind, "127.0.0.1");
  EXPECT_EQ(c.threads, 3u);
  EXPECT_TRUE(c.pin);
  EXPECT_EQ(c.tick_ms, 20u);
  EXPECT_EQ(c.data_dir, "/var/lib/rollcall");
  EXPECT_EQ(c.chat_key_file, "/etc/rollcall/chat.key");
  EXPECT_EQ(c.jwt_secret_file, "/etc/rollcall/jwt");
  EXPECT_TRUE(c.allow_anonymous);
  EXPECT_EQ(c.allowed_origins,
            (std::vector<std::string>{"https://a.example", "https://b.example"}));
  EXPECT_EQ(c.room_capacity, 30u);
  EXPECT_EQ(c.queue_capacity, 0u);
  EXPECT_EQ(c.max_message_bytes, 65536u);
  EXPECT_EQ(c.max_chat_chars, 500u);
  EXPECT_EQ(c.chat_rate, 2.5);
  EXPECT_EQ(c.history_on_join, 0u);
  EXPECT_EQ(c.chat_retention, 5000000000u);
  EXPECT_EQ(c.idle_after_s, 30u);
  EXPECT_EQ(c.away_after_s, 90u);
  EXPECT_EQ(c.session_timeout_s, 12u);
  EXPECT_EQ(c.slow_client_bytes, 4096u);
  EXPECT_EQ(c.max_outbound_bytes, 8192u);
  EXPECT_EQ(c.leave_grace_s, 0u);
  EXPECT_EQ(c.tls_cert, "cert.pem");
  EXPECT_EQ(c.tls_key, "key.pem");
  EXPECT_EQ(c.shutdown_grace_s, 9u);
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
}

TEST_F(ConfigTest, EveryFlagOnTheCommandLine) {
  ASSERT_EQ(kEveryFlag.size(), kFlags.size());
  std::vector<std::string> args;
  for (const auto& [flag, value] : kEveryFlag) {
    args.push_back(flag);
    if (!value.empty()) args.push_back(value);
  }
  expect_every_flag_applied(parse_ok(args));
}

TEST_F(ConfigTest, EveryFlagFromTheEnvironment) {
  for (const auto& [flag, value] : kEveryFlag) set(env_for(flag), value.empty() ? "true" : value);
  expect_every_flag_applied(parse_ok({}));
}

TEST_F(ConfigTest, FlagBeatsEnvironment) {
  set("ROLLCALL_PORT", "9000");
  set("ROLLCALL_LOG_LEVEL", "debug");
  set("ROLLCALL_PIN", "no");
  set("ROLLCALL_ALLOWED_ORIGINS", "https://env.example");
  set("ROLLCALL_TICK_MS", "0");  // invalid, but the flag wins and it is never looked at
  const Config c = parse_ok({"--port", "9001", "--log-level=warn", "--pin", "--allowed-origins",
                             "https://flag.example", "--tick-ms", "25"});
  EXPECT_EQ(c.port, 9001);
  EXPECT_EQ(c.log_level, LogLevel::kWarn);
  EXPECT_TRUE(c.pin);
  EXPECT_EQ(c.allowed_origins, std::vector<std::string>{"https://flag.example"});
  EXPECT_EQ(c.tick_ms, 25u);
}

TEST_F(ConfigTest, EmptyEnvironmentVariableCountsAsUnset) {
  set("ROLLCALL_PORT", "");
  set("ROLLCALL_PIN", "");
  const Config c = parse_ok({});
  EXPECT_EQ(c.port, 8080);
  EXPECT_FALSE(c.pin);
}

TEST_F(ConfigTest, BooleanWordsFromTheEnvironment) {
  const std::vector<std::pair<std::string, bool>> words = {
      {"1", true},   {"0", false}, {"true", true}, {"false", false}, {"yes", true},
      {"no", false}, {"on", true}, {"off", false}, {"TRUE", true},   {"Off", false}};
  for (const auto& [word, expected] : words) {
    set("ROLLCALL_PIN", word);
    set("ROLLCALL_ALLOW_ANONYMOUS", word);
    const Config c = parse_ok({});
    EXPECT_EQ(c.pin, expected) << word;
    EXPECT_EQ(c.allow_anonymous, expected) << word;
  }
  set("ROLLCALL_ALLOW_ANONYMOUS", "0");
  for (const std::string bad : {"maybe", "2", "y", "enabled"}) {
    set("ROLLCALL_PIN", bad);
    expect_rejected({}, "--pin");
    EXPECT_NE(parse({}).text.find("ROLLCALL_PIN"), std::string::npos) << bad;
  }
}

TEST_F(ConfigTest, BooleanFlagWithExplicitValue) {
  EXPECT_FALSE(parse_ok({"--pin=false"}).pin);
  EXPECT_TRUE(parse_ok({"--pin=on"}).pin);
  expect_rejected({"--allow-anonymous=perhaps"}, "--allow-anonymous");
}

TEST_F(ConfigTest, EnvironmentErrorNamesFlagAndVariable) {
  set("ROLLCALL_MAX_CHAT_CHARS", "0");
  const ConfigOutcome out = parse({});
  EXPECT_EQ(out.exit_code, 2);
  EXPECT_NE(out.text.find("--max-chat-chars"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("ROLLCALL_MAX_CHAT_CHARS"), std::string::npos) << out.text;
}

TEST_F(ConfigTest, RangeErrorsExitTwoNamingTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--port", "0"}, "--port"},
      {{"--port", "65536"}, "--port"},
      {{"--threads", "0"}, "--threads"},
      {{"--threads", "257"}, "--threads"},
      {{"--tick-ms", "0"}, "--tick-ms"},
      {{"--tick-ms", "10001"}, "--tick-ms"},
      {{"--room-capacity", "0"}, "--room-capacity"},
      {{"--max-message-bytes", "255"}, "--max-message-bytes"},
      {{"--max-message-bytes", "1048577"}, "--max-message-bytes"},
      {{"--max-chat-chars", "0"}, "--max-chat-chars"},
      {{"--max-chat-chars", "100001"}, "--max-chat-chars"},
      {{"--chat-rate", "0"}, "--chat-rate"},
      {{"--chat-rate", "-1"}, "--chat-rate"},
      {{"--chat-rate", "inf"}, "--chat-rate"},
      {{"--chat-rate", "nan"}, "--chat-rate"},
      {{"--chat-rate", "1e999"}, "--chat-rate"},
      {{"--history-on-join", "10001"}, "--history-on-join"},
      {{"--chat-retention", "0"}, "--chat-retention"},
      {{"--idle-after", "0"}, "--idle-after"},
      {{"--session-timeout", "2"}, "--session-timeout"},
      {{"--slow-client-bytes", "1023"}, "--slow-client-bytes"},
      {{"--log-level", "verbose"}, "--log-level"},
      {{"--log-level", "INFO"}, "--log-level"},
  };
  for (const auto& [args, flag] : cases) expect_rejected(args, flag);
}

TEST_F(ConfigTest, RangeBoundsAreAccepted) {
  EXPECT_EQ(parse_ok({"--port", "1"}).port, 1);
  EXPECT_EQ(parse_ok({"--port", "65535"}).port, 65535);
  EXPECT_EQ(parse_ok({"--threads", "1"}).threads, 1u);
  EXPECT_EQ(parse_ok({"--threads", "256"}).threads, limits::shards_max);
  EXPECT_EQ(parse_ok({"--tick-ms", "10000"}).tick_ms, 10000u);
  EXPECT_EQ(parse_ok({"--room-capacity", "1"}).room_capacity, 1u);
  EXPECT_EQ(parse_ok({"--max-message-bytes", "256"}).max_message_bytes, 256u);
  EXPECT_EQ(parse_ok({"--max-message-bytes", "1048576"}).max_message_bytes, 1048576u);
  EXPECT_EQ(parse_ok({"--max-chat-chars", "100000"}).max_chat_chars, 100000u);
  EXPECT_EQ(parse_ok({"--history-on-join", "10000"}).history_on_join, 10000u);
  EXPECT_EQ(parse_ok({"--session-timeout", "3"}).session_timeout_s, 3u);
  EXPECT_EQ(
      parse_ok({"--slow-client-bytes", "1024", "--max-outbound-bytes", "1024"}).max_outbound_bytes,
      1024u);
  EXPECT_EQ(parse_ok({"--idle-after", "180"}).away_after_s, 180u);  // away == idle is fine
  EXPECT_EQ(parse_ok({"--chat-rate", "0.001"}).chat_rate, 0.001);
  EXPECT_EQ(parse_ok({"--chat-retention", "18446744073709551615"}).chat_retention,
            18446744073709551615u);
  EXPECT_EQ(parse_ok({"--leave-grace", "4294967295"}).leave_grace_s, 4294967295u);
}

TEST_F(ConfigTest, IntegersAreStrictDecimal) {
  for (const std::string bad : {"abc", "-1", "+1", "1.5", "0x10", " 80", "80 ", "8o", ""}) {
    expect_rejected({"--port", bad}, "--port");
  }
  expect_rejected({"--chat-retention", "-1"}, "--chat-retention");  // no wrap-around
  expect_rejected({"--chat-retention", "18446744073709551616"}, "--chat-retention");
  expect_rejected({"--leave-grace", "4294967296"}, "--leave-grace");
  expect_rejected({"--room-capacity", "99999999999999999999999"}, "--room-capacity");
  EXPECT_EQ(parse_ok({"--port", "0080"}).port, 80);  // leading zeros are decimal, not octal
  EXPECT_EQ(parse_ok({"--tick-ms", "010"}).tick_ms, 10u);
}

TEST_F(ConfigTest, CrossFlagRules) {
  expect_rejected({"--idle-after", "100", "--away-after", "99"}, "--away-after");
  expect_rejected({"--away-after", "59"}, "--idle-after");
  expect_rejected({"--slow-client-bytes", "8192", "--max-outbound-bytes", "8191"},
                  "--max-outbound-bytes");
  expect_rejected({"--slow-client-bytes", "8388608"}, "--slow-client-bytes");
  expect_rejected({"--tls-cert", "cert.pem"}, "--tls-key");
  expect_rejected({"--tls-key", "key.pem"}, "--tls-cert");
  set("ROLLCALL_TLS_KEY", "key.pem");
  const Config c = parse_ok({"--tls-cert", "cert.pem"});
  EXPECT_EQ(c.tls_key, "key.pem");
}

TEST_F(ConfigTest, UnknownFlagsAndStrayArguments) {
  expect_rejected({"--prot", "80"}, "--prot");
  expect_rejected({"--verbose"}, "--verbose");
  expect_rejected({"serve"}, "serve");
  expect_rejected({"--port"}, "--port");  // value missing
  expect_rejected({"--port", "1", "--port", "2"}, "--port");
}

TEST_F(ConfigTest, HelpMentionsEveryFlagAndExitsZero) {
  for (const std::string help : {"--help", "-h"}) {
    const ConfigOutcome out = parse({help});
    EXPECT_FALSE(out.config.has_value());
    EXPECT_EQ(out.exit_code, 0);
    for (const auto& flag : kFlags) {
      EXPECT_NE(out.text.find(flag + " "), std::string::npos) << flag;
      EXPECT_NE(out.text.find(env_for(flag)), std::string::npos) << flag;
    }
    EXPECT_NE(out.text.find("1..65535"), std::string::npos);  // ranges are documented
    EXPECT_NE(out.text.find("{debug,info,warn,error}"), std::string::npos);
  }
}

TEST_F(ConfigTest, VersionExitsZero) {
  const ConfigOutcome out = parse({"--version"});
  EXPECT_FALSE(out.config.has_value());
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_NE(out.text.find(std::string(kVersion)), std::string::npos) << out.text;
}

TEST_F(ConfigTest, AllowedOriginsAreSplitTrimmedAndEmptiesDropped) {
  EXPECT_EQ(parse_ok({"--allowed-origins", " https://a.example , ,https://b.example,,\t"})
                .allowed_origins,
            (std::vector<std::string>{"https://a.example", "https://b.example"}));
  EXPECT_EQ(parse_ok({"--allowed-origins", "https://only.example"}).allowed_origins,
            std::vector<std::string>{"https://only.example"});
  EXPECT_TRUE(parse_ok({"--allowed-origins", ""}).allowed_origins.empty());
  EXPECT_TRUE(parse_ok({"--allowed-origins", " , ,"}).allowed_origins.empty());
  set("ROLLCALL_ALLOWED_ORIGINS", "http://localhost:3000,  http://127.0.0.1:3000 ");
  EXPECT_EQ(parse_ok({}).allowed_origins,
            (std::vector<std::string>{"http://localhost:3000", "http://127.0.0.1:3000"}));
}

TEST_F(ConfigTest, LogLevels) {
  EXPECT_EQ(parse_ok({"--log-level", "debug"}).log_level, LogLevel::kDebug);
  EXPECT_EQ(parse_ok({"--log-level", "info"}).log_level, LogLevel::kInfo);
  EXPECT_EQ(parse_ok({"--log-level", "warn"}).log_level, LogLevel::kWarn);
  EXPECT_EQ(parse_ok({"--log-level", "error"}).log_level, LogLevel::kError);
}

}  // namespace
}  // namespace rc
