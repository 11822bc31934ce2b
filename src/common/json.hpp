// Writing JSON by hand, for the few small documents the daemons produce.
#pragma once

#include <string>
#include <string_view>

namespace kalavara {

// Appends `bytes` to `out` as a JSON string, quotes included. Escapes '"',
// '\\' and control characters; passes valid UTF-8 through unchanged. A byte
// that is not part of valid UTF-8 (keys are arbitrary bytes) is written as
// \u00XX, the code point of the same number, since JSON cannot carry raw
// bytes.
void append_json_string(std::string& out, std::string_view bytes);

}  // namespace kalavara
