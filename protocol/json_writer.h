#pragma once
// Outbound JSON (PROTOCOL.md section 3.1): a small streaming writer that
// appends compact JSON to a caller-owned std::string.
//
// The caller reserves the string's capacity once and reuses it (a shard builds
// one frame per room per tick with it), so writing does not allocate once the
// buffer has grown to its working size.
//
// Strings must be valid UTF-8: the server only writes text it has validated.
// Escaped are `"`, `\`, every control character below U+0020 (\b \f \n \r \t
// by their short form, the others as \u00XX) and U+2028/U+2029 (as \u2028 and
// \u2029, so the output is also safe to embed in JavaScript source); all other
// text, DEL and non-ASCII included, passes through unchanged.
// Numbers: integers exactly; doubles in the shortest form that reads back to
// the same value (0.0 -> 0, 1.0 -> 1, 0.1 -> 0.1, 1e21 -> 1e+21); a NaN or an
// infinity is a programmer error (asserted).
//
// Commas and colons are inserted automatically. Misuse (a key outside an
// object, a value in an object without a key, unbalanced end_*, nesting past
// nesting_max) is a programmer error and is asserted.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rc::json {

class Writer {
 public:
  static constexpr std::size_t nesting_max = 64;  // objects/arrays open at once

  explicit Writer(std::string& out) : out_(out) {}  // appends to out

  Writer& begin_object();
  Writer& end_object();
  Writer& begin_array();
  Writer& end_array();
  Writer& key(std::string_view k);  // escaped like a string value
  Writer& value(std::string_view s);
  Writer& value(const char* s);  // so that a literal is a string, not a bool
  Writer& value(bool b);
  Writer& value(std::int64_t n);
  Writer& value(std::uint64_t n);
  Writer& value(std::uint32_t n);
  Writer& value(int n);
  Writer& value(double d);
  Writer& null();
  // A pre-encoded JSON value, copied as is (a member object reused in deltas).
  Writer& raw(std::string_view json);

  template <typename T>
  Writer& field(std::string_view k, T v) {
    key(k);
    return value(v);
  }

  // Depth of open objects/arrays; 0 once the top-level value is complete.
  std::size_t depth() const { return depth_; }

 private:
  void before_value();  // comma if needed; checks a value may come here
  void open(bool is_object, char bracket);
  void close(bool is_object, char bracket);
  bool in_object() const { return depth_ > 0 && ((object_bits_ >> (depth_ - 1)) & 1u); }

  std::string& out_;
  std::uint64_t object_bits_ = 0;  // bit d-1 set: the container at depth d is an object
  std::size_t depth_ = 0;
  bool need_comma_ = false;  // an element was written in the innermost container
  bool after_key_ = false;   // a key was written and its value is due
};

// Appends s as a JSON string, quotes included, escaped as described above.
void escape_string(std::string_view s, std::string& out);

}  // namespace rc::json
