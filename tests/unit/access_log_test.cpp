#include "common/access_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/logging.hpp"

namespace kalavara {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// 2026-12-02T03:04:05.123Z
const auto kTime = std::chrono::system_clock::time_point(1796180645s + 123ms);

struct Request {
  boost::asio::ip::tcp::endpoint peer{boost::asio::ip::make_address("127.0.0.1"), 53012};
  http::CompletedRequest completed;
  Request(std::string_view method, std::string_view target) {
    completed.method_text = method;
    completed.target = target;
    completed.status = 307;
    completed.bytes_received = 48;
    completed.bytes_sent = 512;
    completed.duration = 412us;
    completed.peer = &peer;
  }
};

TEST(UtcTime, IsRfc3339WithMilliseconds) {
  std::string out;
  append_utc_time(out, kTime);
  EXPECT_EQ(out, "2026-12-02T03:04:05.123Z");
  out.clear();
  append_utc_time(out, std::chrono::system_clock::time_point(7ms));
  EXPECT_EQ(out, "1970-01-01T00:00:00.007Z");
}

TEST(AccessLine, TextHasEightFieldsAndNoQuery) {
  Request request("PUT", "/store/my%20key?version=12&exp=99&sig=abcdef");
  EXPECT_EQ(format_access_line(request.completed, "/store/", kTime, LogFormat::kText),
            "2026-12-02T03:04:05.123Z 127.0.0.1:53012 PUT /store/my%20key 307 48 512 0.000412");
}

TEST(AccessLine, JsonHasTheSameFieldsAndTheRoute) {
  Request request("PUT", "/store/my%20key?sig=abcdef");
  EXPECT_EQ(format_access_line(request.completed, "/store/", kTime, LogFormat::kJson),
            R"({"time":"2026-12-02T03:04:05.123Z","peer":"127.0.0.1:53012","method":"PUT",)"
            R"("path":"/store/my%20key","route":"/store/","status":307,"bytes_in":48,)"
            R"("bytes_out":512,"duration_seconds":0.000412})");
}

TEST(AccessLine, TextWritesEveryByteThatIsNotPrintableAsciiPercentEncoded) {
  // Beast lets a target carry '"', '\' and bytes from 0x80 up; a method
  // never holds a space, but the field is escaped all the same.
  Request request("GE T", "/store/a\"b\\c\x80\xff\x7f\n d");
  EXPECT_EQ(format_access_line(request.completed, "/store/", kTime, LogFormat::kText),
            "2026-12-02T03:04:05.123Z 127.0.0.1:53012 GE%20T /store/a\"b\\c%80%FF%7F%0A%20d 307 "
            "48 512 0.000412");
}

TEST(AccessLine, JsonEscapesQuotesControlsAndBytesThatAreNotUtf8) {
  Request request("GET", "/store/a\"b\\c\x80\n\xC3\xA9");
  const auto line = format_access_line(request.completed, "/store/", kTime, LogFormat::kJson);
  EXPECT_NE(line.find(R"("path":"/store/a\"b\\c\u0080\u000a)"
                      "\xC3\xA9\""),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(AccessLine, AnUnparsableRequestHasDashesOrEmptyStringsAndNoRoute) {
  Request request("", "");
  request.completed.status = 400;
  request.completed.peer = nullptr;
  EXPECT_EQ(format_access_line(request.completed, "", kTime, LogFormat::kText),
            "2026-12-02T03:04:05.123Z - - - 400 48 512 0.000412");
  const auto json = format_access_line(request.completed, "", kTime, LogFormat::kJson);
  EXPECT_NE(json.find(R"("peer":"-","method":"","path":"","route":null,"status":400)"),
            std::string::npos)
      << json;
}

TEST(AccessLine, AnIpv6PeerIsBracketed) {
  Request request("GET", "/healthz");
  request.peer = {boost::asio::ip::make_address("::1"), 8080};
  EXPECT_NE(format_access_line(request.completed, "/healthz", kTime, LogFormat::kText)
                .find(" [::1]:8080 GET /healthz "),
            std::string::npos);
}

TEST(JsonLogLine, EscapesTheMessage) {
  EXPECT_EQ(format_json_log_line(kTime, "warning", "key \"a\nb\"\x01\xff"),
            R"({"time":"2026-12-02T03:04:05.123Z","level":"warning",)"
            R"("message":"key \"a\u000ab\"\u0001\u00ff"})");
}

// ---------------------------------------------------------------------------
// AccessLog itself, on real files

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

class AccessLogFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kalavara-access-log-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  http::Router router_;
};

TEST_F(AccessLogFile, WritesOneLinePerRequestAndAReopenStartsANewFile) {
  const auto path = dir_ / "access.log";
  auto log = AccessLog::open(path.string(), LogFormat::kText, router_);
  ASSERT_TRUE(log) << log.error().message;
  Request request("GET", "/store/before");
  for (int i = 0; i < 3; ++i) (*log)->request_finished(request.completed);
  // Lines still queued at a reopen go to the new file: wait until these
  // are written (bounded), so that each file's lines are known.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (count_lines(read_all(path)) < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(count_lines(read_all(path)), 3U);
  // What logrotate does: move the file away, then signal.
  fs::rename(path, dir_ / "access.log.1");
  ASSERT_TRUE((*log)->reopen());
  EXPECT_TRUE(fs::exists(path));
  Request after("GET", "/store/after");
  (*log)->request_finished(after.completed);
  (*log)->request_finished(after.completed);
  EXPECT_EQ((*log)->dropped(), 0U);
  log->reset();  // writes what is queued
  const auto old_text = read_all(dir_ / "access.log.1");
  const auto new_text = read_all(path);
  EXPECT_EQ(count_lines(old_text), 3U) << old_text;
  EXPECT_EQ(count_lines(new_text), 2U) << new_text;
  EXPECT_EQ(new_text.find("/store/before"), std::string::npos) << new_text;
  EXPECT_EQ(old_text.find("/store/after"), std::string::npos) << old_text;
}

TEST_F(AccessLogFile, AFileThatCannotBeOpenedIsAnError) {
  auto log = AccessLog::open((dir_ / "missing" / "access.log").string(), LogFormat::kText, router_);
  ASSERT_FALSE(log);
  EXPECT_NE(log.error().message.find("cannot open access log"), std::string::npos);
}

// A stalled disk, played by a pipe no one reads: request_finished() never
// waits for it, and the lines the queue cannot hold are dropped and counted.
TEST_F(AccessLogFile, AStalledWriterDropsTheOldestLinesInsteadOfBlocking) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const auto writer = "/proc/self/fd/" + std::to_string(pipe_fds[1]);
  constexpr std::size_t kQueue = 16;
  auto log = AccessLog::open(writer, LogFormat::kText, router_, kQueue);
  ASSERT_TRUE(log) << log.error().message;
  ::close(pipe_fds[1]);
  // About 100 bytes a line: far more than the pipe (64 KiB) and the queue hold.
  constexpr std::size_t kLines = 5000;
  Request request("GET", "/store/stalled");
  for (std::size_t i = 0; i < kLines; ++i) (*log)->request_finished(request.completed);
  EXPECT_GT((*log)->dropped(), 0U);
  metrics::Writer out;
  (*log)->collect(out);
  EXPECT_NE(out.take().find("kalavara_access_log_dropped_lines_total{reason=\"queue_full\"} "),
            std::string::npos);
  const auto dropped = (*log)->dropped();
  // Unstall it, and read everything until the log closes its end.
  std::string received;
  std::thread reader([&] {
    char buffer[65536];
    for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
      received.append(buffer, static_cast<std::size_t>(n));
    }
  });
  log->reset();
  reader.join();
  ::close(pipe_fds[0]);
  // Every line was written whole, or dropped whole.
  EXPECT_EQ(count_lines(received) + dropped, kLines);
  EXPECT_EQ(received.size() % count_lines(received), 0U);
}

}  // namespace
}  // namespace kalavara
