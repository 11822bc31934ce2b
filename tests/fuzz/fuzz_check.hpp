// What the fuzz targets share: a check that turns a broken property into a
// crash libFuzzer records (with the input that caused it), and the input as
// a string_view.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace kalavara::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

[[noreturn]] inline void fail(const char* file, int line, const char* what) {
  std::fprintf(stderr, "%s:%d: fuzz property broken: %s\n", file, line, what);
  // abort() rather than exit(): libFuzzer treats the signal as a crash and
  // saves the input.
  std::abort();
}

}  // namespace kalavara::fuzz

// Not assert(): NDEBUG builds must still check.
#define FUZZ_CHECK(condition) \
  ((condition) ? static_cast<void>(0) : ::kalavara::fuzz::fail(__FILE__, __LINE__, #condition))
