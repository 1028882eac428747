#pragma once
// Reading rollcall's /metrics (Prometheus text format 0.0.4) for the chat
// benchmark: the chat log's group-commit counters and histograms
// (persist/metrics.cc) and the shards' chat counters (rooms/metrics.cc),
// sampled before and after the measured window and subtracted.
//
// Pure: no I/O; any thread may call any function.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tools/load/net.h"

namespace rc::load {

// One cumulative bucket of a Prometheus histogram: observations <= le.
struct PromBucket {
  std::string le;  // as written ("1", "0.005", "+Inf"), which identifies the bucket
  std::int64_t count = 0;
};

// A bucket bound for people: "0.049999999999999996" -> "0.05", "+Inf" kept.
inline std::string le_short(const std::string& le) {
  char* end = nullptr;
  const double v = std::strtod(le.c_str(), &end);
  if (end == le.c_str() || *end != '\0' || le == "+Inf") return le;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// The `<name>_bucket{...le="X"...} N` lines of one histogram family, in the
// order written, summed over label sets that differ only in labels other than
// `le` (per-shard series add up). Empty when there is none.
inline std::vector<PromBucket> prometheus_buckets(std::string_view text, std::string_view name) {
  std::vector<PromBucket> out;
  const std::string prefix = std::string(name) + "_bucket{";
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::string_view line = next_line(text, pos);
    if (line.substr(0, prefix.size()) != prefix) continue;
    const std::size_t close = line.find('}', prefix.size());
    const std::size_t le_at = line.find("le=\"", prefix.size());
    if (close == std::string_view::npos || le_at == std::string_view::npos || le_at > close)
      continue;
    const std::size_t le_end = line.find('"', le_at + 4);
    if (le_end == std::string_view::npos || le_end > close) continue;
    const std::string le(line.substr(le_at + 4, le_end - le_at - 4));
    std::int64_t v = 0;
    if (!parse_sample_int(line.substr(close + 1), v)) continue;
    bool merged = false;
    for (PromBucket& b : out) {
      if (b.le == le) {
        b.count += v;
        merged = true;
        break;
      }
    }
    if (!merged) out.push_back(PromBucket{le, v});
  }
  return out;
}

// The value of an unlabelled sample `name value` read as a double (sums of
// histograms are written as floats); -1 when there is none.
inline double prometheus_double(std::string_view text, std::string_view name) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::string_view line = next_line(text, pos);
    if (line.size() <= name.size() || line.substr(0, name.size()) != name ||
        line[name.size()] != ' ') {
      continue;
    }
    const std::string value(line.substr(name.size() + 1));
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (end != value.c_str()) return v;
  }
  return -1;
}

// The chat-related counters of one /metrics answer; -1 where absent.
struct ChatServerSample {
  std::int64_t commits = -1;          // rollcall_log_commits_total
  std::int64_t records = -1;          // rollcall_log_messages_committed_total
  std::int64_t append_failures = -1;  // rollcall_log_append_failures_total
  std::int64_t accepted = -1;         // rollcall_chat_accepted_total
  std::int64_t broadcast = -1;        // rollcall_chat_broadcast_total
  std::int64_t rate_limited = -1;     // rollcall_chat_rate_limited_total
  std::int64_t commit_seconds_count = -1;
  std::vector<PromBucket> batch;        // rollcall_log_commit_batch_messages
  std::vector<PromBucket> commit_time;  // rollcall_log_commit_seconds
  double commit_seconds_sum = -1;       // rollcall_log_commit_seconds_sum

  bool valid() const { return commits >= 0 && records >= 0; }
};

inline ChatServerSample parse_chat_metrics(std::string_view text) {
  ChatServerSample s;
  s.commits = prometheus_sum(text, "rollcall_log_commits_total");
  s.records = prometheus_sum(text, "rollcall_log_messages_committed_total");
  s.append_failures = prometheus_sum(text, "rollcall_log_append_failures_total");
  s.accepted = prometheus_sum(text, "rollcall_chat_accepted_total");
  s.broadcast = prometheus_sum(text, "rollcall_chat_broadcast_total");
  s.rate_limited = prometheus_sum(text, "rollcall_chat_rate_limited_total");
  s.commit_seconds_count = prometheus_sum(text, "rollcall_log_commit_seconds_count");
  s.commit_seconds_sum = prometheus_double(text, "rollcall_log_commit_seconds_sum");
  s.batch = prometheus_buckets(text, "rollcall_log_commit_batch_messages");
  s.commit_time = prometheus_buckets(text, "rollcall_log_commit_seconds");
  return s;
}

// after - before, bucket by bucket (matched by `le`); cumulative counts stay
// cumulative. Buckets missing from either side are left out.
inline std::vector<PromBucket> bucket_delta(const std::vector<PromBucket>& before,
                                            const std::vector<PromBucket>& after) {
  std::vector<PromBucket> out;
  for (const PromBucket& a : after) {
    for (const PromBucket& b : before) {
      if (b.le == a.le) {
        out.push_back(PromBucket{a.le, a.count - b.count});
        break;
      }
    }
  }
  return out;
}

// A cumulative histogram's quantile q (0..1] as the bound of the first
// bucket holding it (le_short; "+Inf" past the last bound); empty when there
// are no samples.
inline std::string bucket_quantile(const std::vector<PromBucket>& cumulative, double q) {
  if (cumulative.empty() || cumulative.back().count <= 0) return {};
  const double rank = q * static_cast<double>(cumulative.back().count);
  for (const PromBucket& b : cumulative) {
    if (static_cast<double>(b.count) >= rank) return le_short(b.le);
  }
  return le_short(cumulative.back().le);
}

}  // namespace rc::load
