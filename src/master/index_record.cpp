#include "master/index_record.hpp"

namespace kalavara {
namespace {

constexpr std::uint8_t kFormat1 = 1;

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

void put_volumes(std::string& out, const std::vector<std::string>& volumes) {
  put_varint(out, volumes.size());
  for (const auto& volume : volumes) put_bytes(out, volume);
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
      // The tenth byte holds bit 63 only: more would not fit in 64 bits.
      if (shift == 63 && byte > 1) return false;
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

  bool volumes(std::vector<std::string>& out) {
    std::uint64_t count = 0;
    // Each volume takes at least one byte, which bounds a hostile count.
    if (!varint(count) || count > rest_.size()) return false;
    out.resize(count);
    for (auto& volume : out) {
      if (!bytes(volume)) return false;
    }
    return true;
  }

  bool at_end() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

Error corrupt(std::string_view what) {
  return Error{Errc::kInternal, "corrupt index record: " + std::string(what)};
}

Result<IndexRecord> decode_format1(Reader& reader) {
  IndexRecord record;
  std::uint8_t state = 0;
  if (!reader.u8(state) || !reader.varint(record.size) || !reader.varint(record.version) ||
      !reader.bytes(record.checksum)) {
    return corrupt("truncated");
  }
  if (state != static_cast<std::uint8_t>(IndexRecord::State::kCommitted)) {
    return corrupt("unknown state " + std::to_string(state));
  }
  if (!reader.volumes(record.volumes)) return corrupt("truncated volume list");
  if (!reader.at_end()) return corrupt("trailing bytes");
  return record;
}

}  // namespace

std::string encode_record(const IndexRecord& record) {
  std::string out;
  out.push_back(static_cast<char>(kIndexRecordFormat));
  out.push_back(static_cast<char>(record.state));
  put_varint(out, record.version);
  put_varint(out, record.size);
  put_bytes(out, record.checksum);
  put_volumes(out, record.volumes);
  out.push_back(record.previous ? 1 : 0);
  if (record.previous) {
    put_varint(out, record.previous->version);
    put_bytes(out, record.previous->checksum);
    put_volumes(out, record.previous->volumes);
  }
  put_volumes(out, record.markers);
  return out;
}

Result<IndexRecord> decode_record(std::string_view bytes) {
  Reader reader(bytes);
  std::uint8_t format = 0;
  if (!reader.u8(format)) return corrupt("empty");
  if (format == kFormat1) return decode_format1(reader);
  if (format != kIndexRecordFormat) return corrupt("unknown format " + std::to_string(format));
  IndexRecord record;
  std::uint8_t state = 0;
  std::uint8_t has_previous = 0;
  if (!reader.u8(state) || !reader.varint(record.version) || !reader.varint(record.size) ||
      !reader.bytes(record.checksum)) {
    return corrupt("truncated");
  }
  if (state > static_cast<std::uint8_t>(IndexRecord::State::kTombstone)) {
    return corrupt("unknown state " + std::to_string(state));
  }
  record.state = static_cast<IndexRecord::State>(state);
  if (!reader.volumes(record.volumes)) return corrupt("truncated volume list");
  if (!reader.u8(has_previous) || has_previous > 1) return corrupt("truncated");
  if (has_previous == 1) {
    // Not emplace(): clang 14 takes Previous, whose members have default
    // initializers, as not default-constructible inside IndexRecord.
    auto& previous = record.previous.emplace(IndexRecord::Previous{});
    if (!reader.varint(previous.version) || !reader.bytes(previous.checksum) ||
        !reader.volumes(previous.volumes)) {
      return corrupt("truncated previous version");
    }
  }
  if (!reader.volumes(record.markers)) return corrupt("truncated marker list");
  if (!reader.at_end()) return corrupt("trailing bytes");
  return record;
}

bool encoded_record_is_committed(std::string_view bytes) {
  return bytes.size() >= 2 && (bytes[0] == kFormat1 || bytes[0] == kIndexRecordFormat) &&
         bytes[1] == static_cast<char>(IndexRecord::State::kCommitted);
}

}  // namespace kalavara
