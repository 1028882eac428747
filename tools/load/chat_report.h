#pragma once
// rollcall-load chat's report: one JSON object on stdout and a summary on
// stderr. Besides the clients' own counts (sent, acked, delivered, ack and
// delivery latency, errors by code, the stream checks of chat.h) it reports
// the server's group commits over the window, from /metrics scraped at its
// start and end: commits, records, records per commit and the commit batch
// size histogram (rollcall_log_commit_batch_messages).
//
// Threading: main thread only, after the workers have ended.

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/load/chat.h"
#include "tools/load/metrics_text.h"
#include "tools/load/report.h"

namespace rc::load {

// The server's chat log over the window: after - before.
struct LogWindow {
  bool valid = false;
  std::int64_t commits = 0;
  std::int64_t records = 0;
  std::int64_t append_failures = 0;
  std::int64_t accepted = 0;
  std::int64_t broadcast = 0;
  std::int64_t rate_limited = 0;
  double commit_s = 0;                // summed commit time (encode + write + fsync)
  std::vector<PromBucket> batch;      // cumulative, over the window
  std::vector<PromBucket> commit_le;  // cumulative, seconds
};

inline LogWindow log_window(const ServerSample& srv) {
  LogWindow w;
  const ChatServerSample a = parse_chat_metrics(srv.first_metrics);
  const ChatServerSample b = parse_chat_metrics(srv.last_metrics);
  if (!a.valid() || !b.valid()) return w;
  w.valid = true;
  w.commits = b.commits - a.commits;
  w.records = b.records - a.records;
  w.append_failures = b.append_failures - a.append_failures;
  w.accepted = b.accepted - a.accepted;
  w.broadcast = b.broadcast - a.broadcast;
  w.rate_limited = b.rate_limited - a.rate_limited;
  w.commit_s = b.commit_seconds_sum - a.commit_seconds_sum;
  w.batch = bucket_delta(a.batch, b.batch);
  w.commit_le = bucket_delta(a.commit_time, b.commit_time);
  return w;
}

// [{"le":"1","count":N},…] with per-bucket (not cumulative) counts.
inline std::string buckets_json(const std::vector<PromBucket>& cumulative) {
  std::string out = "[";
  std::int64_t below = 0;
  for (const PromBucket& b : cumulative) {
    if (out.size() > 1) out += ",";
    out += fmt::format("{{\"le\":\"{}\",\"count\":{}}}", le_short(b.le), b.count - below);
    below = b.count;
  }
  return out + "]";
}

inline std::string log_json(const LogWindow& l, double window_s) {
  if (!l.valid) return "\"log\":null,";
  const double per_commit =
      l.commits > 0 ? static_cast<double>(l.records) / static_cast<double>(l.commits) : 0;
  const double commit_ms = l.commits > 0 ? 1000.0 * l.commit_s / static_cast<double>(l.commits) : 0;
  return fmt::format(
      "\"log\":{{\"commits\":{},\"commits_per_s\":{:.1f},\"records\":{},\"records_per_s\":{:.1f},"
      "\"records_per_commit\":{:.2f},\"batch_p50_le\":\"{}\",\"batch_p99_le\":\"{}\","
      "\"commit_ms_mean\":{:.3f},\"commit_p99_le_s\":\"{}\",\"append_failures\":{},"
      "\"accepted\":{},\"broadcast\":{},\"rate_limited\":{},\"batch_histogram\":{},"
      "\"commit_seconds_histogram\":{}}},",
      l.commits, per_s(static_cast<std::uint64_t>(std::max<std::int64_t>(l.commits, 0)), window_s),
      l.records, per_s(static_cast<std::uint64_t>(std::max<std::int64_t>(l.records, 0)), window_s),
      per_commit, bucket_quantile(l.batch, 0.5), bucket_quantile(l.batch, 0.99), commit_ms,
      bucket_quantile(l.commit_le, 0.99), l.append_failures, l.accepted, l.broadcast,
      l.rate_limited, buckets_json(l.batch), buckets_json(l.commit_le));
}

// True when every check of a chat run passed: nothing lost, duplicated,
// reordered or left without a seq, and every room's clients agree.
inline bool chat_checks_ok(const Counters& c, const StreamCheck& st) {
  return c.acks_without_seq == 0 && c.duplicate_answers == 0 && c.unknown_answers == 0 &&
         c.unanswered == 0 && c.seq_gaps == 0 && c.seq_not_increasing == 0 &&
         st.clients_behind == 0 && st.clients_diverged == 0 && st.rooms > 0;
}

inline std::string chat_report_json(const Settings& s, const Shared& sh, const Counters& c,
                                    const RunTimes& t, const ServerSample& srv,
                                    const StreamCheck& st) {
  const double w = t.window_s;
  const bool closed_loop = s.inflight > 0;
  std::string j = "{";
  j += fmt::format("\"mode\":\"chat\",\"target\":\"{}:{}\",\"rooms\":{},\"members_per_room\":{},",
                   s.host, s.port, s.rooms, s.members_per_room);
  j += fmt::format(
      "\"loop\":\"{}\",\"rate_target\":{},\"inflight\":{},\"text_bytes\":{},\"duration_s\":{},"
      "\"warmup_s\":{},\"threads\":{},\"sources\":{},",
      closed_loop ? "closed" : "open", closed_loop ? 0 : s.chat_rate, s.inflight, s.text_bytes,
      s.duration_s, s.warmup_s, s.threads, s.sources);
  j += fmt::format(
      "\"sessions_target\":{},\"sessions_open\":{},\"sessions_failed\":{},\"connect_s\":{:.3f},"
      "\"window_s\":{:.3f},\"drain_s\":{:.3f},",
      s.sessions, sh.ready.load(), sh.failed.load(), t.connect_s, w, t.drain_s);
  j += fmt::format(
      "\"sent\":{},\"sent_per_s\":{:.1f},\"skipped\":{},\"send_late_ms_max\":{:.3f},\"acked\":{},"
      "\"acked_per_s\":{:.1f},\"refused\":{},",
      c.chat_sent, per_s(c.chat_sent, w), c.chat_skipped, ms(c.send_late_us_max), c.acks,
      per_s(c.acks, w), c.chat_refused);
  j += "\"ack_latency_ms\":" + latency_json(c.ack_latency_us) + ",";
  j += fmt::format("\"deliveries\":{},\"deliveries_per_s\":{:.1f},", c.deliveries,
                   per_s(c.deliveries, w));
  j += "\"delivery_latency_ms\":" + latency_json(c.latency_us) + ",";
  j += fmt::format("\"frames_per_s\":{:.1f},\"bytes_per_s\":{:.0f},", per_s(c.frames, w),
                   per_s(c.bytes, w));
  j += log_json(log_window(srv), w);
  j += common_json(s, c, srv);
  j += fmt::format(
      "\"checks\":{{\"sent_total\":{},\"acked_total\":{},\"unanswered\":{},\"acks_without_seq\":{"
      "},\"duplicate_answers\":{},\"unknown_answers\":{},\"seq_gaps\":{},\"seq_not_increasing\":{"
      "},\"foreign_messages\":{},\"rooms\":{},\"rooms_consistent\":{},\"clients_compared\":{},"
      "\"clients_behind\":{},\"clients_diverged\":{},\"ok\":{}}}",
      c.chat_sent_total, c.acks_total, c.unanswered, c.acks_without_seq, c.duplicate_answers,
      c.unknown_answers, c.seq_gaps, c.seq_not_increasing, c.foreign_chat, st.rooms,
      st.rooms_consistent, st.clients, st.clients_behind, st.clients_diverged,
      chat_checks_ok(c, st));
  return j + "}";
}

inline void chat_report_human(const Settings& s, const Shared& sh, const Counters& c,
                              const RunTimes& t, const ServerSample& srv, const StreamCheck& st) {
  const double w = t.window_s;
  std::fprintf(
      stderr, "rollcall-load chat%s: %llu/%llu sessions open in %.1f s, window %.1f s, %s\n",
      s.tls ? " (TLS)" : "", static_cast<unsigned long long>(sh.ready.load()),
      static_cast<unsigned long long>(s.sessions), t.connect_s, w,
      s.inflight > 0 ? fmt::format("closed loop, {} in flight per session", s.inflight).c_str()
                     : fmt::format("open loop at {} msgs/s", s.chat_rate).c_str());
  std::fprintf(
      stderr, "  sent %.0f msgs/s (%llu skipped), acked %.0f/s, refused %llu, %.0f deliveries/s\n",
      per_s(c.chat_sent, w), static_cast<unsigned long long>(c.chat_skipped), per_s(c.acks, w),
      static_cast<unsigned long long>(c.chat_refused), per_s(c.deliveries, w));
  const Histogram& h = c.ack_latency_us;
  std::fprintf(stderr, "  ack ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (%llu samples)\n",
               ms(h.percentile(0.5)), ms(h.percentile(0.9)), ms(h.percentile(0.99)), ms(h.max()),
               static_cast<unsigned long long>(h.count()));
  const LogWindow l = log_window(srv);
  if (l.valid) {
    std::fprintf(
        stderr,
        "  server log: %lld commits, %lld records, %.1f records/commit (p50 <= %s, p99 "
        "<= %s), %.2f ms/commit\n",
        static_cast<long long>(l.commits), static_cast<long long>(l.records),
        l.commits > 0 ? static_cast<double>(l.records) / static_cast<double>(l.commits) : 0.0,
        bucket_quantile(l.batch, 0.5).c_str(), bucket_quantile(l.batch, 0.99).c_str(),
        l.commits > 0 ? 1000.0 * l.commit_s / static_cast<double>(l.commits) : 0.0);
  }
  std::fprintf(
      stderr,
      "  checks: %s; unanswered %llu, duplicates %llu, seq gaps %llu, out of order %llu, "
      "rooms consistent %llu/%llu (%llu clients behind, %llu diverged)\n",
      chat_checks_ok(c, st) ? "ok" : "FAILED", static_cast<unsigned long long>(c.unanswered),
      static_cast<unsigned long long>(c.duplicate_answers),
      static_cast<unsigned long long>(c.seq_gaps),
      static_cast<unsigned long long>(c.seq_not_increasing),
      static_cast<unsigned long long>(st.rooms_consistent),
      static_cast<unsigned long long>(st.rooms), static_cast<unsigned long long>(st.clients_behind),
      static_cast<unsigned long long>(st.clients_diverged));
  common_human(s, c, srv);
}

}  // namespace rc::load
