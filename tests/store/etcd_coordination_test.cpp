// EtcdCoordination (master/etcd_coordination.hpp) against a real etcd: the
// masters' leases, version slots and the leadership, with masters that
// stop, stall past their lease or lose etcd.
#include "master/etcd_coordination.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "master/etcd_index_store.hpp"
#include "master/version_clock.hpp"
#include "store/etcd_test_dir.hpp"

namespace kalavara {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::ClusterDir;
using testing::endpoints_of;

constexpr auto kTtl = std::chrono::seconds(2);
constexpr auto kRenew = std::chrono::milliseconds(250);

// Polls `pred` until it holds or `timeout` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

// One master's share of the coordination: its own store connection, clock
// and coordination, all driven by one io thread of its own.
class Master {
 public:
  Master(const std::vector<std::string>& endpoints, const std::string& prefix, std::string name,
         VersionClock::Now now = wall_clock_micros)
      : work_(io_.get_executor()), thread_([this] { io_.run(); }) {
    EtcdStoreSettings settings;
    settings.client.endpoints = endpoints_of(endpoints);
    settings.client.timeout = 1000ms;
    settings.prefix = prefix;
    auto store = await(EtcdIndexStore::open(settings));
    EXPECT_TRUE(store.ok()) << store.error().message;
    if (!store.ok()) return;
    store_ = std::move(store).value();
    auto clock = await(VersionClock::open(*store_, std::move(now)));
    EXPECT_TRUE(clock.ok()) << clock.error().message;
    if (!clock.ok()) return;
    clock_ = std::move(clock).value();
    CoordinationSettings coordinated;
    coordinated.lease_ttl = kTtl;
    coordinated.renew_interval = kRenew;
    coordinated.identity = std::move(name);
    coordination_.emplace(store_->client(), store_->prefix(), *store_, *clock_, coordinated);
  }
  ~Master() {
    if (coordination_ && started_ && !frozen_) {
      coordination_->stop();
      // The loop ends on its own once stopped, giving up what it held.
      eventually([&] { return !coordination_->slot(); }, 3s);
    }
    work_.reset();
    io_.stop();
    thread_.join();
  }

  // Runs `task` on this master's io thread and waits for its result.
  template <class T>
  T await(boost::asio::awaitable<T> task) {
    std::promise<T> done;
    auto wrapped = [](boost::asio::awaitable<T> inner,
                      std::promise<T>& out) -> boost::asio::awaitable<void> {
      out.set_value(co_await std::move(inner));
    };
    boost::asio::co_spawn(io_, wrapped(std::move(task), done), boost::asio::detached);
    return done.get_future().get();
  }

  bool ready() const { return coordination_.has_value(); }
  Status join() { return await(coordination_->join()); }
  void start() {
    coordination_->start(io_.get_executor());
    started_ = true;
  }
  void stop() { coordination_->stop(); }
  // Ends this master as kill -9 would: no revoke, nothing renewed again.
  void freeze() {
    frozen_ = true;
    work_.reset();
    io_.stop();
  }
  Result<std::uint64_t> next_version() { return await(clock_->next()); }
  // Whether any master holds slot `index` now (its key exists).
  bool slot_held(std::uint64_t index) {
    etcd::RangeRequest read;
    char digits[8];
    std::snprintf(digits, sizeof digits, "%02llu", static_cast<unsigned long long>(index));
    read.key = store_->prefix() + "x/slots/" + digits;
    auto held = await(store_->client().range(read));
    return !held.ok() || !held->kvs.empty();
  }
  EtcdCoordination& coordination() { return *coordination_; }
  VersionClock& clock() { return *clock_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  std::unique_ptr<EtcdIndexStore> store_;
  std::unique_ptr<VersionClock> clock_;
  std::optional<EtcdCoordination> coordination_;
  bool started_ = false;
  bool frozen_ = false;
};

class EtcdCoordinationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::etcd_available()) GTEST_SKIP() << test::kEtcdMissing;
    ASSERT_TRUE(dir_.start(1)) << dir_.error;
    prefix_ =
        std::string("c/") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/";
  }
  void TearDown() override {
    if (dir_.cluster && HasFailure()) std::cerr << dir_.cluster->describe();
    dir_.release(HasFailure());
  }
  std::unique_ptr<Master> master(std::string name, VersionClock::Now now = wall_clock_micros) {
    auto made =
        std::make_unique<Master>(dir_.cluster->client_urls(), prefix_, std::move(name), now);
    EXPECT_TRUE(made->ready());
    return made;
  }

  ClusterDir dir_;
  std::string prefix_;
};

TEST_F(EtcdCoordinationTest, NoVersionIsIssuedBeforeASlotIsClaimed) {
  auto a = master("a");
  ASSERT_TRUE(a->ready());
  const auto before = a->next_version();
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.error().code, Errc::kUnavailable);
  ASSERT_TRUE(a->join().ok());
  EXPECT_TRUE(a->next_version().ok());
}

TEST_F(EtcdCoordinationTest, MastersHoldDistinctSlotsAndExactlyOneLeads) {
  std::vector<std::unique_ptr<Master>> masters;
  for (const char* name : {"a", "b", "c"}) {
    masters.push_back(master(name));
    ASSERT_TRUE(masters.back()->ready());
    const auto joined = masters.back()->join();
    ASSERT_TRUE(joined.ok()) << joined.error().message;
  }
  std::vector<std::uint64_t> slots;
  int leaders = 0;
  for (auto& m : masters) {
    const auto slot = m->coordination().slot();
    ASSERT_TRUE(slot.has_value());
    EXPECT_EQ(slot->count, 16U);
    EXPECT_EQ(std::count(slots.begin(), slots.end(), slot->index), 0) << "slot " << slot->index;
    slots.push_back(slot->index);
    leaders += m->coordination().leading() ? 1 : 0;
    // Each issues only versions of its slot, so none issues another's.
    for (int i = 0; i < 20; ++i) {
      const auto version = m->next_version();
      ASSERT_TRUE(version.ok()) << version.error().message;
      EXPECT_EQ(*version % slot->count, slot->index);
    }
  }
  EXPECT_EQ(leaders, 1);
  EXPECT_TRUE(masters.front()->coordination().leading()) << "the first to join took it";
}

TEST_F(EtcdCoordinationTest, AStoppedLeaderIsSucceededAtTheNextRenewal) {
  auto a = master("a");
  auto b = master("b");
  ASSERT_TRUE(a->join().ok());
  ASSERT_TRUE(b->join().ok());
  a->start();
  b->start();
  ASSERT_TRUE(a->coordination().leading());
  ASSERT_FALSE(b->coordination().leading());
  const auto stopped = Clock::now();
  a->stop();
  ASSERT_TRUE(eventually([&] { return b->coordination().leading(); }, 5s))
      << "the revoked lease freed the leadership";
  EXPECT_LT(Clock::now() - stopped, kTtl) << "without waiting for the lease to expire";
  EXPECT_FALSE(a->coordination().leading());
  EXPECT_FALSE(a->coordination().slot().has_value());
}

TEST_F(EtcdCoordinationTest, AKilledLeaderIsSucceededOnceItsLeaseExpires) {
  auto a = master("a");
  auto b = master("b");
  ASSERT_TRUE(a->join().ok());
  ASSERT_TRUE(b->join().ok());
  a->start();
  b->start();
  ASSERT_TRUE(a->coordination().leading());
  a->freeze();
  const auto killed = Clock::now();
  EXPECT_TRUE(eventually([&] { return !a->coordination().leading(); }, kTtl))
      << "a stalled leader counts itself out before its lease can end";
  ASSERT_TRUE(eventually([&] { return b->coordination().leading(); }, kTtl + 3s));
  EXPECT_GE(Clock::now() - killed, kTtl / 2) << "not before the stalled one stopped counting";
}

TEST_F(EtcdCoordinationTest, ASlotTakenOverIssuesAboveEverythingItsEarlierHolderIssued) {
  // The first holder's clock runs an hour ahead; the next one's is right.
  const auto ahead = [] { return wall_clock_micros() + 3'600'000'000ULL; };
  auto a = master("a", ahead);
  ASSERT_TRUE(a->join().ok());
  const auto slot = a->coordination().slot();
  ASSERT_TRUE(slot.has_value());
  std::uint64_t last = 0;
  for (int i = 0; i < 10; ++i) {
    const auto version = a->next_version();
    ASSERT_TRUE(version.ok()) << version.error().message;
    last = *version;
  }
  a->freeze();  // killed: its lease expires, its slot is free
  auto b = master("b");
  ASSERT_TRUE(eventually([&] { return !b->slot_held(slot->index); }, kTtl + 3s))
      << "the slot is free again once the lease expired";
  ASSERT_TRUE(b->join().ok());
  ASSERT_EQ(b->coordination().slot(), slot) << "the lowest free slot";
  const auto next = b->next_version();
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_GT(*next, last) << "the same slot never issues a version twice";
  EXPECT_EQ(*next % slot->count, slot->index);
}

TEST_F(EtcdCoordinationTest, AMasterCutOffFromEtcdStopsIssuingAndLeadingThenRecovers) {
  auto a = master("a");
  ASSERT_TRUE(a->join().ok());
  a->start();
  ASSERT_TRUE(a->coordination().leading());
  ASSERT_TRUE(a->next_version().ok());
  dir_.cluster->kill(0);
  const auto cut = Clock::now();
  ASSERT_TRUE(eventually([&] { return !a->coordination().leading(); }, kTtl));
  EXPECT_LT(Clock::now() - cut, kTtl) << "before the lease could have expired";
  // Versions: none once the slot's deadline is past (the floor may still
  // let one through before it).
  ASSERT_TRUE(eventually(
      [&] {
        const auto version = a->next_version();
        return !version.ok() && version.error().code == Errc::kUnavailable;
      },
      kTtl));
  ASSERT_TRUE(dir_.cluster->restart(0));
  ASSERT_TRUE(eventually([&] { return a->coordination().leading(); }, 10s))
      << "a new lease, its slot and the leadership claimed again";
  const auto version = a->next_version();
  ASSERT_TRUE(version.ok()) << version.error().message;
}

}  // namespace
}  // namespace kalavara
