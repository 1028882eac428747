#include "persist/metrics.h"

#include <fmt/format.h>

#include <iterator>

namespace rc::persist {
namespace {

void counter(std::string& out, std::string_view name, std::string_view help, const Counter& c) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name,
                 name, c.get());
}

template <std::size_t N>
void histogram(std::string& out, std::string_view name, std::string_view help, const Histogram<N>& h,
               double divisor) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  for (std::size_t b = 0; b < h.size(); ++b) {
    fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"{}\"}} {}\n", name,
                   static_cast<double>(h.bound(b)) / divisor, h.bucket(b));
  }
  fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name,
                 h.count(), name, static_cast<double>(h.sum()) / divisor, name, h.count());
}

}  // namespace

void append_metrics(const LogWriter::Stats& s, std::string& out) {
  counter(out, "rollcall_log_commits_total", "Chat log write transactions committed (each one fsync).",
          s.commits);
  counter(out, "rollcall_log_messages_committed_total", "Chat messages committed.", s.messages_committed);
  counter(out, "rollcall_log_append_failures_total", "Chat messages the log could not store.",
          s.append_failures);
  counter(out, "rollcall_log_map_full_errors_total", "Transactions that failed with a full map.",
          s.map_full_errors);
  counter(out, "rollcall_log_io_errors_total", "Transactions that failed for another reason.",
          s.fsync_failures);
  counter(out, "rollcall_log_retention_deleted_total", "Records removed by retention.",
          s.retention_deleted);
  counter(out, "rollcall_log_reads_total", "Opens and history reads served.", s.reads);
  counter(out, "rollcall_log_decrypt_failures_total", "Records left out of reads: they did not decrypt.",
          s.decrypt_failures);
  histogram(out, "rollcall_log_commit_batch_messages", "Chat messages per group commit.",
            s.commit_batch_size, 1.0);
  histogram(out, "rollcall_log_commit_seconds", "Time of one group commit, fsync included.",
            s.commit_latency_us, 1e6);  // dividing keeps bounds exact: 0.05, not 0.049999999999999996
}

}  // namespace rc::persist
