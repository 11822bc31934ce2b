// A volume's maintenance listing (GET /admin/blobs, NDJSON) read the way a
// test needs it: pages as they come, and every page from a cursor on.
// Header-only; the harness's HTTP client only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"

namespace kalavara::it {

struct ListedBlob {
  std::string name;
  std::string key;  // decoded: the key's exact bytes
  std::uint64_t version = 0;
  std::uint64_t size = 0;
  std::string checksum;
  std::uint64_t mtime = 0;
  bool marker = false;
};

struct ListedPage {
  HttpResponse response;
  std::vector<ListedBlob> blobs;
  std::string next;
  std::string error;  // set when the page is not a well-formed listing
};

// The raw text of `field` in a flat JSON object without escapes: a string's
// contents, or a literal up to the next ',' or '}'.
inline std::optional<std::string> flat_json_field(std::string_view object, std::string_view field) {
  const std::string quoted = "\"" + std::string(field) + "\":";
  auto at = object.find(quoted);
  if (at == std::string_view::npos) return std::nullopt;
  at += quoted.size();
  if (at < object.size() && object[at] == '"') {
    const auto end = object.find('"', at + 1);
    if (end == std::string_view::npos) return std::nullopt;
    return std::string(object.substr(at + 1, end - at - 1));
  }
  const auto end = object.find_first_of(",}", at);
  if (end == std::string_view::npos) return std::nullopt;
  return std::string(object.substr(at, end - at));
}

inline std::optional<std::string> decode_percent(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const auto hex = std::string(text.substr(i + 1, 2));
    if (hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) return std::nullopt;
    out.push_back(static_cast<char>(std::stoi(hex, nullptr, 16)));
    i += 2;
  }
  return out;
}

// GET /admin/blobs on the volume at `port`.
inline ListedPage list_blob_page(uint16_t port, const std::string& after, std::size_t limit) {
  ListedPage page;
  std::string target = "/admin/blobs?limit=" + std::to_string(limit);
  if (!after.empty()) target += "&after=" + percent_encode(after, false);
  page.response = http_request(port, "GET", target);
  if (page.response.status != 200) {
    page.error = "not 200: " + page.response.summary();
    return page;
  }
  if (page.response.header("Content-Type") != "application/x-ndjson") {
    page.error = "not NDJSON: " + page.response.summary();
    return page;
  }
  std::string_view body = page.response.body;
  bool ended = false;
  while (!body.empty()) {
    const auto newline = body.find('\n');
    if (newline == std::string_view::npos || ended) {
      page.error = "a line after the last, or no newline";
      return page;
    }
    const auto line = body.substr(0, newline);
    body.remove_prefix(newline + 1);
    if (const auto next = flat_json_field(line, "next")) {
      page.next = *next;
      ended = true;
      continue;
    }
    ListedBlob blob;
    const auto name = flat_json_field(line, "name");
    const auto key = flat_json_field(line, "key");
    const auto version = flat_json_field(line, "version");
    const auto size = flat_json_field(line, "size");
    const auto checksum = flat_json_field(line, "checksum");
    const auto mtime = flat_json_field(line, "mtime");
    const auto marker = flat_json_field(line, "marker");
    const auto decoded = key ? decode_percent(*key) : std::nullopt;
    if (!name || !decoded || !version || !size || !checksum || !mtime || !marker) {
      page.error = "a malformed line: " + std::string(line);
      return page;
    }
    blob.name = *name;
    blob.key = *decoded;
    blob.version = std::stoull(*version);
    blob.size = std::stoull(*size);
    blob.checksum = *checksum;
    blob.mtime = std::stoull(*mtime);
    blob.marker = *marker == "true";
    page.blobs.push_back(std::move(blob));
  }
  if (!ended) page.error = "no last line";
  return page;
}

// Every page, `limit` at a time; adds a failure and stops at a bad page.
// `pages` counts the requests made.
inline std::vector<ListedBlob> list_all_blobs(uint16_t port, std::size_t limit,
                                              std::size_t* pages = nullptr) {
  std::vector<ListedBlob> all;
  std::string after;
  for (std::size_t page_count = 1; page_count <= 100000; ++page_count) {
    auto page = list_blob_page(port, after, limit);
    if (!page.error.empty()) {
      ADD_FAILURE() << page.error;
      return all;
    }
    if (page.blobs.size() > limit) ADD_FAILURE() << "a page longer than its limit";
    for (auto& blob : page.blobs) all.push_back(std::move(blob));
    if (pages != nullptr) *pages = page_count;
    if (page.next.empty()) return all;
    after = page.next;
  }
  ADD_FAILURE() << "the listing never ended";
  return all;
}

}  // namespace kalavara::it
