#pragma once
// The chat log's counters in Prometheus text format (appended to /metrics).

#include <string>

#include "persist/log_writer.h"

namespace rc::persist {

// Any thread: the counters are single-writer relaxed atomics.
void append_metrics(const LogWriter::Stats& stats, std::string& out);

}  // namespace rc::persist
