// Fuzz target: the index's record encoding (master/index_record.hpp). The
// input is tried as stored bytes — decoding never crashes, and what decodes
// encodes to bytes that decode to the same record — and as the makings of a
// record, which must survive encode then decode.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "master/index_record.hpp"

namespace kalavara::fuzz {
namespace {

void check_decode(std::string_view bytes) {
  const auto record = decode_record(bytes);
  if (!record) {
    FUZZ_CHECK(record.error().code == Errc::kInternal);
    return;
  }
  FUZZ_CHECK(encoded_record_is_committed(bytes) == record->committed());
  // Re-encoded (in the current format, also from format 1), it decodes to
  // the same record. The bytes may differ: a varint with needless
  // continuation bytes decodes to the same number.
  const auto encoded = encode_record(*record);
  const auto again = decode_record(encoded);
  FUZZ_CHECK(again && *again == *record);
  FUZZ_CHECK(encode_record(*again) == encoded);
  FUZZ_CHECK(encoded_record_is_committed(encoded) == record->committed());
  // A record that was already in the current, shortest form comes back
  // byte for byte.
  if (bytes[0] == kIndexRecordFormat && bytes.size() == encoded.size()) {
    FUZZ_CHECK(encoded == bytes);
  }
}

// Reads the parts of a record from the input, in order.
class Parts {
 public:
  explicit Parts(std::string_view bytes) : rest_(bytes) {}
  std::uint64_t number() {
    std::uint64_t value = 0;
    for (int i = 0; i < 8 && !rest_.empty(); ++i) {
      value = (value << 8) | static_cast<std::uint8_t>(rest_.front());
      rest_.remove_prefix(1);
    }
    return value;
  }
  std::string text() {
    const auto length = std::min<std::size_t>(number() % 64, rest_.size());
    std::string out(rest_.substr(0, length));
    rest_.remove_prefix(length);
    return out;
  }
  std::vector<std::string> texts() {
    std::vector<std::string> out(number() % 4);
    for (auto& text_out : out) text_out = text();
    return out;
  }

 private:
  std::string_view rest_;
};

void check_encode(std::string_view bytes) {
  Parts parts(bytes);
  IndexRecord record;
  const auto flags = parts.number();
  record.state = (flags & 1) != 0 ? IndexRecord::State::kTombstone : IndexRecord::State::kCommitted;
  record.version = parts.number();
  record.size = parts.number();
  record.checksum = parts.text();
  record.volumes = parts.texts();
  if ((flags & 2) != 0) {
    auto& previous = record.previous.emplace(IndexRecord::Previous{});
    previous.version = parts.number();
    previous.checksum = parts.text();
    previous.volumes = parts.texts();
  }
  record.markers = parts.texts();
  const auto encoded = encode_record(record);
  const auto decoded = decode_record(encoded);
  FUZZ_CHECK(decoded && *decoded == record);
  FUZZ_CHECK(encoded_record_is_committed(encoded) == record.committed());
}

}  // namespace
}  // namespace kalavara::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kalavara::fuzz;
  const auto bytes = as_text(data, size);
  check_decode(bytes);
  check_encode(bytes);
  return 0;
}
