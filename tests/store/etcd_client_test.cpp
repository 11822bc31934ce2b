// etcd::Client (master/etcd_client.hpp) against real etcd processes: the KV
// calls and leases on one member, then fail-over and failures on three
// members that the tests kill; and the EtcdCluster the store tests rely on.
#include "master/etcd_client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "common/blocking.hpp"
#include "store/etcd_test_dir.hpp"
#include "support/etcd_cluster.hpp"
#include "support/loopback.hpp"

namespace kalavara {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using etcd::Compare;
using etcd::Op;
using test::EtcdCluster;

using testing::ClusterDir;
using testing::endpoints_of;

std::string random_bytes(std::size_t n) {
  std::mt19937_64 random(n);
  std::string bytes(n, '\0');
  for (auto& c : bytes) c = static_cast<char>(random());
  return bytes;
}

// Runs awaitables on one io_context, which outlives the client and its
// kept-alive connections.
class WithClient {
 protected:
  template <class T>
  T run(boost::asio::awaitable<T> task) {
    return run_to_completion(io_, std::move(task));
  }
  etcd::TxnResult put(const std::string& key, const std::string& value, std::int64_t lease = 0) {
    const std::vector<Op> ops{Op::put(key, value, lease)};
    auto result = run(client_->txn({}, ops));
    EXPECT_TRUE(result.ok()) << result.error().message;
    if (!result.ok()) return {};
    EXPECT_TRUE(result->succeeded) << "no compare: the success branch";
    return std::move(result).value();
  }
  std::optional<etcd::KeyValue> get(const std::string& key) {
    etcd::RangeRequest request;
    request.key = key;
    auto result = run(client_->range(request));
    EXPECT_TRUE(result.ok()) << result.error().message;
    if (!result.ok() || result->kvs.empty()) return std::nullopt;
    EXPECT_EQ(result->kvs.size(), 1U);
    return result->kvs.front();
  }
  // The key's value, or "<absent>".
  std::string value_at(const std::string& key) {
    const auto kv = get(key);
    return kv ? kv->value : "<absent>";
  }

  boost::asio::io_context io_;
  std::unique_ptr<etcd::Client> client_;
};

// ---------------------------------------------------------------------------
// prefix_end

TEST(EtcdPrefixEnd, IsTheSmallestKeyAboveEveryKeyWithThePrefix) {
  EXPECT_EQ(etcd::prefix_end("a"), "b");
  EXPECT_EQ(etcd::prefix_end("k/"), "k0");
  EXPECT_EQ(etcd::prefix_end("ab"), "ac");
  EXPECT_EQ(etcd::prefix_end("a\xff"), "b") << "a trailing 0xff is dropped, the byte before raised";
  EXPECT_EQ(etcd::prefix_end("a\xff\xff"), "b");
  EXPECT_EQ(etcd::prefix_end(std::string("a\0", 2)), std::string("a\x01", 2));
  EXPECT_EQ(etcd::prefix_end("\x7f"), "\x80");
  EXPECT_EQ(etcd::prefix_end("\xfe"), "\xff");
  EXPECT_EQ(etcd::prefix_end("\xff"), std::string(1, '\0')) << "every key";
  EXPECT_EQ(etcd::prefix_end("\xff\xff"), std::string(1, '\0'));
  EXPECT_EQ(etcd::prefix_end(""), std::string(1, '\0')) << "all 0xff, vacuously: every key";
}

// ---------------------------------------------------------------------------
// One member

class EtcdClientTest : public ::testing::Test, public WithClient {
 protected:
  static void SetUpTestSuite() {
    if (!test::etcd_available()) return;
    suite_ = new ClusterDir;
    suite_->start(1);
  }
  static void TearDownTestSuite() {
    if (suite_ == nullptr) return;
    const auto* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
    suite_->release(suite != nullptr && suite->Failed());
    delete suite_;
    suite_ = nullptr;
  }

  void SetUp() override {
    if (!test::etcd_available()) GTEST_SKIP() << test::kEtcdMissing;
    ASSERT_TRUE(suite_ != nullptr && suite_->cluster) << suite_->error;
    etcd::Settings settings;
    settings.endpoints = endpoints_of(suite_->cluster->client_urls());
    client_ = std::make_unique<etcd::Client>(settings);
    // Every test's keys under a prefix of its own.
    prefix_ =
        std::string("t/") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/";
  }
  void TearDown() override {
    if (HasFailure() && suite_ != nullptr && suite_->cluster) {
      std::cerr << suite_->cluster->describe();
    }
    client_.reset();
  }

  std::string key(std::string_view name) const { return prefix_ + std::string(name); }

  static ClusterDir* suite_;
  std::string prefix_;
};

ClusterDir* EtcdClientTest::suite_ = nullptr;

TEST_F(EtcdClientTest, APutInATransactionIsReadBackWithItsRevisions) {
  const auto written = put(key("k"), "v1");
  ASSERT_GT(written.revision, 0);
  const auto read = get(key("k"));
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->key, key("k"));
  EXPECT_EQ(read->value, "v1");
  EXPECT_EQ(read->create_revision, written.revision);
  EXPECT_EQ(read->mod_revision, written.revision);
  EXPECT_EQ(read->lease, 0);

  const auto rewritten = put(key("k"), "v2");
  EXPECT_GT(rewritten.revision, written.revision);
  const auto again = get(key("k"));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->value, "v2");
  EXPECT_EQ(again->create_revision, written.revision) << "created once";
  EXPECT_EQ(again->mod_revision, rewritten.revision);

  etcd::RangeRequest absent;
  absent.key = key("absent");
  const auto none = run(client_->range(absent));
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->kvs.empty());
  EXPECT_EQ(none->count, 0);
  EXPECT_GE(none->revision, rewritten.revision) << "read at the store's revision";
  EXPECT_GT(client_->counters().requests, 0U);
}

TEST_F(EtcdClientTest, KeysAndValuesAreBytes) {
  const std::string odd_key = key(std::string("\0\xff/\x80 caf\xc3\xa9\n", 11));
  const std::string value = random_bytes(200 * 1024);  // every byte value, base64 inside
  put(odd_key, value);
  put(key(""), "");  // the prefix itself, with an empty value
  const auto read = get(odd_key);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->key, odd_key);
  EXPECT_TRUE(read->value == value) << "the 200 KiB value came back changed";
  const auto empty = get(key(""));
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->value, "");
}

TEST_F(EtcdClientTest, ARangeOverAPrefixIsInKeyOrderAndLimited) {
  for (const auto* name : {"c", "a", "e", "b", "d"}) put(key(std::string("p/") + name), name);
  put(key("p"), "outside");   // below the prefix "p/"
  put(key("p0"), "outside");  // above it
  etcd::RangeRequest request;
  request.key = key("p/");
  request.range_end = etcd::prefix_end(request.key);
  auto all = run(client_->range(request));
  ASSERT_TRUE(all.ok()) << all.error().message;
  std::vector<std::string> values;
  for (const auto& kv : all->kvs) values.push_back(kv.value);
  EXPECT_EQ(values, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(all->count, 5);
  EXPECT_FALSE(all->more);

  request.limit = 2;
  auto limited = run(client_->range(request));
  ASSERT_TRUE(limited.ok()) << limited.error().message;
  ASSERT_EQ(limited->kvs.size(), 2U);
  EXPECT_EQ(limited->kvs[0].key, key("p/a"));
  EXPECT_EQ(limited->kvs[1].key, key("p/b"));
  EXPECT_TRUE(limited->more);
  EXPECT_EQ(limited->count, 5) << "the count is the whole range's";

  request.limit = 0;
  request.keys_only = true;
  auto keys = run(client_->range(request));
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  ASSERT_EQ(keys->kvs.size(), 5U);
  for (const auto& kv : keys->kvs) EXPECT_EQ(kv.value, "") << kv.key;
  EXPECT_EQ(keys->kvs[4].key, key("p/e"));

  request.keys_only = false;
  request.count_only = true;
  auto count = run(client_->range(request));
  ASSERT_TRUE(count.ok()) << count.error().message;
  EXPECT_TRUE(count->kvs.empty());
  EXPECT_EQ(count->count, 5);
}

TEST_F(EtcdClientTest, ACompareOnTheModRevisionAppliesOnlyToTheRevisionRead) {
  const auto first = put(key("k"), "v1");
  const std::vector<Compare> unchanged{
      {key("k"), Compare::Target::kModRevision, Compare::Result::kEqual, first.revision, ""}};
  const std::vector<Op> replace{Op::put(key("k"), "v2")};
  const std::vector<Op> read_back{Op::range(key("k"))};
  auto applied = run(client_->txn(unchanged, replace, read_back));
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_TRUE(applied->succeeded);
  EXPECT_GT(applied->revision, first.revision);
  EXPECT_TRUE(applied->ranges.empty()) << "the success branch had no range";

  // The same compare again: the revision moved on.
  const std::vector<Op> stale_write{Op::put(key("k"), "stale")};
  auto refused = run(client_->txn(unchanged, stale_write, read_back));
  ASSERT_TRUE(refused.ok()) << refused.error().message;
  EXPECT_FALSE(refused->succeeded);
  ASSERT_EQ(refused->ranges.size(), 1U) << "the failure branch's range";
  ASSERT_EQ(refused->ranges[0].kvs.size(), 1U);
  EXPECT_EQ(refused->ranges[0].kvs[0].value, "v2");
  EXPECT_EQ(refused->ranges[0].kvs[0].mod_revision, applied->revision);
  EXPECT_EQ(value_at(key("k")), "v2");

  // An absent key compares as revision 0: create-only.
  const std::vector<Compare> absent{
      {key("new"), Compare::Target::kModRevision, Compare::Result::kEqual, 0, ""}};
  const std::vector<Op> create{Op::put(key("new"), "created")};
  auto created = run(client_->txn(absent, create));
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_TRUE(created->succeeded);
  auto again = run(client_->txn(absent, create));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->succeeded) << "it exists now";

  // The other targets.
  const std::vector<Compare> by_value{
      {key("k"), Compare::Target::kValue, Compare::Result::kEqual, 0, "v2"},
      {key("k"), Compare::Target::kCreateRevision, Compare::Result::kEqual, first.revision, ""},
      {key("k"), Compare::Target::kModRevision, Compare::Result::kGreater, first.revision, ""},
      {key("k"), Compare::Target::kModRevision, Compare::Result::kLess, applied->revision + 1, ""},
      {key("k"), Compare::Target::kModRevision, Compare::Result::kNotEqual, first.revision, ""},
      {key("k"), Compare::Target::kLease, Compare::Result::kEqual, 0, ""}};
  const std::vector<Op> noop{Op::range(key("k"))};
  auto matched = run(client_->txn(by_value, noop));
  ASSERT_TRUE(matched.ok()) << matched.error().message;
  EXPECT_TRUE(matched->succeeded);
  ASSERT_EQ(matched->ranges.size(), 1U);
  EXPECT_EQ(matched->ranges[0].kvs.size(), 1U);
  const std::vector<Compare> wrong_value{
      {key("k"), Compare::Target::kValue, Compare::Result::kEqual, 0, "v1"}};
  auto unmatched = run(client_->txn(wrong_value, noop));
  ASSERT_TRUE(unmatched.ok()) << unmatched.error().message;
  EXPECT_FALSE(unmatched->succeeded);
}

TEST_F(EtcdClientTest, ARangeAtAnEarlierRevisionReadsThatSnapshot) {
  const auto first = put(key("k"), "v1");
  put(key("k"), "v2");
  put(key("later"), "x");
  etcd::RangeRequest request;
  request.key = key("");
  request.range_end = etcd::prefix_end(request.key);
  request.revision = first.revision;
  auto then = run(client_->range(request));
  ASSERT_TRUE(then.ok()) << then.error().message;
  ASSERT_EQ(then->kvs.size(), 1U) << "\"later\" did not exist yet";
  EXPECT_EQ(then->kvs[0].value, "v1");
  request.revision = 0;
  auto now = run(client_->range(request));
  ASSERT_TRUE(now.ok()) << now.error().message;
  ASSERT_EQ(now->kvs.size(), 2U);
  EXPECT_EQ(now->kvs[0].value, "v2");
}

TEST_F(EtcdClientTest, ADeleteRangeRemovesEveryKeyOfAPrefixAndNothingElse) {
  for (const auto* name : {"a", "b", "c"}) put(key(std::string("p/") + name), "x");
  put(key("p0"), "kept");
  put(key("p"), "kept");
  const std::vector<Op> erase{Op::erase(key("p/"), etcd::prefix_end(key("p/")))};
  auto erased = run(client_->txn({}, erase));
  ASSERT_TRUE(erased.ok()) << erased.error().message;
  EXPECT_TRUE(erased->succeeded);
  etcd::RangeRequest request;
  request.key = key("");
  request.range_end = etcd::prefix_end(request.key);
  auto left = run(client_->range(request));
  ASSERT_TRUE(left.ok()) << left.error().message;
  std::vector<std::string> keys;
  for (const auto& kv : left->kvs) keys.push_back(kv.key);
  EXPECT_EQ(keys, (std::vector<std::string>{key("p"), key("p0")}));
  // One key alone.
  const std::vector<Op> erase_one{Op::erase(key("p"))};
  ASSERT_TRUE(run(client_->txn({}, erase_one)).ok());
  EXPECT_FALSE(get(key("p")).has_value());
  EXPECT_TRUE(get(key("p0")).has_value());
}

TEST_F(EtcdClientTest, ATransactionThatEtcdRefusesIsPeerFailedAndWritesNothing) {
  // etcd refuses a transaction that writes one key twice.
  const std::vector<Op> twice{Op::put(key("k"), "1"), Op::put(key("k"), "2"),
                              Op::put(key("other"), "3")};
  auto refused = run(client_->txn({}, twice));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kPeerFailed) << refused.error().message;
  EXPECT_FALSE(get(key("k")).has_value());
  EXPECT_FALSE(get(key("other")).has_value());
}

TEST_F(EtcdClientTest, ARevokedLeaseTakesItsKeysAndCannotBeRenewed) {
  auto lease = run(client_->grant_lease(30));
  ASSERT_TRUE(lease.ok()) << lease.error().message;
  ASSERT_NE(*lease, 0);
  put(key("leased"), "x", *lease);
  put(key("free"), "y");
  const auto leased = get(key("leased"));
  ASSERT_TRUE(leased.has_value());
  EXPECT_EQ(leased->lease, *lease);

  auto ttl = run(client_->keep_alive(*lease));
  ASSERT_TRUE(ttl.ok()) << ttl.error().message;
  EXPECT_GT(*ttl, 0);
  EXPECT_LE(*ttl, 30);

  const auto revoked = run(client_->revoke_lease(*lease));
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_FALSE(get(key("leased")).has_value()) << "revoking deletes the lease's keys";
  EXPECT_TRUE(get(key("free")).has_value());
  auto renewed = run(client_->keep_alive(*lease));
  ASSERT_FALSE(renewed.ok()) << "renewed a revoked lease: ttl " << *renewed;
  EXPECT_EQ(renewed.error().code, Errc::kNotFound) << renewed.error().message;
}

TEST_F(EtcdClientTest, AnExpiredLeaseTakesItsKeysAndIsNotFound) {
  auto lease = run(client_->grant_lease(1));
  ASSERT_TRUE(lease.ok()) << lease.error().message;
  put(key("leased"), "x", *lease);
  // etcd expires leases on its own clock: poll for the key to go.
  const auto deadline = Clock::now() + 15s;
  bool gone = false;
  for (int polls = 0; polls < 400 && Clock::now() < deadline; ++polls) {
    if (!get(key("leased")).has_value()) {
      gone = true;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(gone) << "a 1 s lease still held its key after 15 s";
  auto renewed = run(client_->keep_alive(*lease));
  ASSERT_FALSE(renewed.ok()) << "renewed an expired lease: ttl " << *renewed;
  EXPECT_EQ(renewed.error().code, Errc::kNotFound) << renewed.error().message;
  // And one that never was.
  auto never = run(client_->keep_alive(0x7e57'0000'0000'0001));
  ASSERT_FALSE(never.ok());
  EXPECT_EQ(never.error().code, Errc::kNotFound) << never.error().message;
}

// ---------------------------------------------------------------------------
// Members that cannot be reached

TEST(EtcdClientUnreachable, AMemberThatRefusesTheConnectionIsUnavailableNotNoAnswer) {
  // A port that was just listened on and closed: connections are refused.
  auto listener = test::listen_on_loopback(1);
  ASSERT_GE(listener.fd, 0);
  ::close(listener.fd);
  etcd::Settings settings;
  settings.endpoints = endpoints_of({"http://127.0.0.1:" + std::to_string(listener.port)});
  settings.timeout = 2000ms;
  etcd::Client client(settings);
  boost::asio::io_context io;
  etcd::RangeRequest request;
  request.key = "k";
  const auto started = Clock::now();
  auto read = run_to_completion(io, client.range(request));
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, Errc::kUnavailable) << read.error().message;
  const std::vector<Op> write{Op::put("k", "v")};
  auto written = run_to_completion(io, client.txn({}, write));
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, Errc::kUnavailable)
      << "never delivered, so not applied: " << written.error().message;
  auto lease = run_to_completion(io, client.grant_lease(5));
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.error().code, Errc::kUnavailable) << lease.error().message;
  EXPECT_LT(Clock::now() - started, settings.timeout) << "a refused connection is not waited on";
  EXPECT_EQ(client.counters().failures, 3U);
}

// ---------------------------------------------------------------------------
// Three members

class EtcdClientFailoverTest : public ::testing::Test, public WithClient {
 protected:
  void SetUp() override {
    if (!test::etcd_available()) GTEST_SKIP() << test::kEtcdMissing;
    ASSERT_TRUE(cluster_.start(3)) << cluster_.error;
    settings_.endpoints = endpoints_of(cluster_.cluster->client_urls());
    settings_.timeout = 3000ms;
    client_ = std::make_unique<etcd::Client>(settings_);
  }
  void TearDown() override {
    client_.reset();
    if (HasFailure() && cluster_.cluster) std::cerr << cluster_.cluster->describe();
    cluster_.release(HasFailure());
  }
  EtcdCluster& cluster() { return *cluster_.cluster; }

  ClusterDir cluster_;
  etcd::Settings settings_;
};

TEST_F(EtcdClientFailoverTest, AReadGoesOnWhenThePreferredMemberIsKilled) {
  put("k", "v");
  ASSERT_EQ(client_->counters().failovers, 0U) << "member 0 answered: the client prefers it";
  cluster().kill(0);
  const auto read = get("k");
  ASSERT_TRUE(read.has_value()) << "the read did not go on to another member";
  EXPECT_EQ(read->value, "v");
  EXPECT_GE(client_->counters().failovers, 1U);
  EXPECT_EQ(client_->counters().failures, 0U);
  // Once the two left have a leader, writes go through them too.
  ASSERT_TRUE(cluster().wait_healthy(10s)) << cluster().describe();
  put("k", "v2");
  EXPECT_EQ(value_at("k"), "v2");
  // The member comes back on its ports and data, and has what it missed.
  ASSERT_TRUE(cluster().restart(0)) << cluster().log_tail(0);
  etcd::Settings only_0 = settings_;
  only_0.endpoints = endpoints_of({cluster().client_url(0)});
  etcd::Client client_0(only_0);
  etcd::RangeRequest request;
  request.key = "k";
  auto from_0 = run(client_0.range(request));
  ASSERT_TRUE(from_0.ok()) << from_0.error().message;
  ASSERT_EQ(from_0->kvs.size(), 1U);
  EXPECT_EQ(from_0->kvs[0].value, "v2");
}

TEST_F(EtcdClientFailoverTest, AWriteToADownMemberGoesToTheNextOnceAndApplies) {
  cluster().kill(0);
  ASSERT_TRUE(cluster().wait_healthy(10s)) << cluster().describe();
  // Create-only: applied twice, the second would fail.
  const std::vector<Compare> absent{
      {"once", Compare::Target::kModRevision, Compare::Result::kEqual, 0, ""}};
  const std::vector<Op> create{Op::put("once", "1")};
  auto created = run(client_->txn(absent, create));
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_TRUE(created->succeeded) << "sent once: the refused member never had it";
  EXPECT_GE(client_->counters().failovers, 1U);
  EXPECT_EQ(value_at("once"), "1");
}

TEST_F(EtcdClientFailoverTest, EveryMemberDownIsUnavailableWithinTheTimeout) {
  put("k", "v");
  const auto failures_before = client_->counters().failures;
  for (int m = 0; m < cluster().size(); ++m) cluster().kill(m);
  etcd::RangeRequest request;
  request.key = "k";
  const auto started = Clock::now();
  auto read = run(client_->range(request));
  const auto read_took = Clock::now() - started;
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, Errc::kUnavailable) << read.error().message;
  EXPECT_LT(read_took, settings_.timeout) << "refused connections are not waited on";
  const std::vector<Op> write{Op::put("k", "v2")};
  auto written = run(client_->txn({}, write));
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, Errc::kUnavailable) << written.error().message;
  EXPECT_EQ(client_->counters().failures, failures_before + 2);
}

// ---------------------------------------------------------------------------
// The test clusters themselves

TEST(EtcdCluster, StartsOnPickedPortsAndRestartsAMemberOnItsPortsAndData) {
  if (!test::etcd_available()) GTEST_SKIP() << test::kEtcdMissing;
  ClusterDir dir;
  ASSERT_TRUE(dir.start(1)) << dir.error;
  auto& cluster = *dir.cluster;
  ASSERT_EQ(cluster.size(), 1);
  EXPECT_NE(cluster.client_port(0), 2379);
  EXPECT_EQ(cluster.endpoints_flag(), cluster.client_url(0));
  EXPECT_TRUE(cluster.healthy(0));
  boost::asio::io_context io;
  etcd::Settings settings;
  settings.endpoints = endpoints_of(cluster.client_urls());
  {
    etcd::Client client(settings);
    const std::vector<Op> write{Op::put("kept", "yes")};
    ASSERT_TRUE(run_to_completion(io, client.txn({}, write)).ok());
  }
  cluster.stop(0);
  EXPECT_FALSE(cluster.running(0));
  EXPECT_FALSE(cluster.healthy(0));
  EXPECT_FALSE(cluster.wait_healthy(100ms)) << "no member is running";
  ASSERT_TRUE(cluster.restart(0)) << cluster.log_tail(0);
  EXPECT_TRUE(cluster.wait_healthy(5s));
  etcd::Client client(settings);
  etcd::RangeRequest request;
  request.key = "kept";
  auto read = run_to_completion(io, client.range(request));
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_EQ(read->kvs.size(), 1U);
  EXPECT_EQ(read->kvs[0].value, "yes");
  cluster.kill(0);
  EXPECT_FALSE(cluster.running(0));
  dir.release(HasFailure());
}

TEST(EtcdCluster, ThreeMembersElectALeaderAndSurviveTheLossOfOne) {
  if (!test::etcd_available()) GTEST_SKIP() << test::kEtcdMissing;
  ClusterDir dir;
  ASSERT_TRUE(dir.start(3)) << dir.error;
  auto& cluster = *dir.cluster;
  const auto urls = cluster.client_urls();
  ASSERT_EQ(urls.size(), 3U);
  EXPECT_NE(urls[0], urls[1]);
  EXPECT_NE(urls[1], urls[2]);
  EXPECT_EQ(cluster.endpoints_flag(), urls[0] + "," + urls[1] + "," + urls[2]);
  for (int m = 0; m < 3; ++m) EXPECT_TRUE(cluster.healthy(m)) << m;
  cluster.kill(1);
  const auto started = Clock::now();
  EXPECT_TRUE(cluster.wait_healthy(5s)) << cluster.describe();
  EXPECT_LT(Clock::now() - started, 3s) << "the short election timeout keeps fail-over fast";
  EXPECT_FALSE(cluster.healthy(1));
  dir.release(HasFailure());
}

}  // namespace
}  // namespace kalavara
