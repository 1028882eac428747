#pragma once
// Programmer-error assertions. They stay on in release builds: a broken
// invariant stops the process with the place it broke, instead of corrupting
// a room. Operating errors (bad input, full room) are values, see status.h.

#include <cstdio>
#include <cstdlib>

namespace rc {

[[noreturn]] inline void assert_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "rollcall: assertion failed: %s at %s:%d\n", expr, file, line);
  std::abort();
}

}  // namespace rc

#define RC_ASSERT(expr) \
  ((expr) ? static_cast<void>(0) : ::rc::assert_failed(#expr, __FILE__, __LINE__))
