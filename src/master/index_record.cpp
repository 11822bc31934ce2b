#include "master/index_record.hpp"

namespace kalavara {
namespace {

void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void put_bytes(std::string& out, std::string_view bytes) {
  put_varint(out, bytes.size());
  out.append(bytes);
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}

  bool u8(std::uint8_t& value) {
    if (rest_.empty()) return false;
    value = static_cast<std::uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return true;
  }

  bool varint(std::uint64_t& value) {
    value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      std::uint8_t byte = 0;
      if (!u8(byte)) return false;
      value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  bool bytes(std::string& value) {
    std::uint64_t length = 0;
    if (!varint(length) || length > rest_.size()) return false;
    value.assign(rest_.substr(0, length));
    rest_.remove_prefix(length);
    return true;
  }

  bool at_end() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

Error corrupt(std::string_view what) {
  return Error{Errc::kInternal, "corrupt index record: " + std::string(what)};
}

}  // namespace

std::string encode_record(const IndexRecord& record) {
  std::string out;
  out.push_back(static_cast<char>(kIndexRecordFormat));
  out.push_back(static_cast<char>(record.state));
  put_varint(out, record.size);
  put_varint(out, record.version);
  put_bytes(out, record.checksum);
  put_varint(out, record.volumes.size());
  for (const auto& volume : record.volumes) put_bytes(out, volume);
  return out;
}

Result<IndexRecord> decode_record(std::string_view bytes) {
  Reader reader(bytes);
  std::uint8_t format = 0;
  if (!reader.u8(format)) return corrupt("empty");
  if (format != kIndexRecordFormat) return corrupt("unknown format " + std::to_string(format));
  IndexRecord record;
  std::uint8_t state = 0;
  std::uint64_t volume_count = 0;
  if (!reader.u8(state) || !reader.varint(record.size) || !reader.varint(record.version) ||
      !reader.bytes(record.checksum) || !reader.varint(volume_count)) {
    return corrupt("truncated");
  }
  if (state != static_cast<std::uint8_t>(IndexRecord::State::kCommitted)) {
    return corrupt("unknown state " + std::to_string(state));
  }
  // Each volume takes at least one byte, which bounds a hostile count.
  if (volume_count > bytes.size()) return corrupt("volume count too large");
  record.volumes.resize(volume_count);
  for (auto& volume : record.volumes) {
    if (!reader.bytes(volume)) return corrupt("truncated volume list");
  }
  if (!reader.at_end()) return corrupt("trailing bytes");
  return record;
}

}  // namespace kalavara
