// The checker on hand-made histories: each rule it enforces, shown by a
// history that breaks it and one that does not. Pure: no daemons.
#include <gtest/gtest.h>

#include "faults/history.hpp"

namespace kalavara::faults {
namespace {

const Clock::time_point kEpoch = Clock::now();

Clock::time_point at(int ms) { return kEpoch + std::chrono::milliseconds(ms); }

Operation write(const std::string& key, int from, int to, Outcome outcome, std::uint64_t id,
                std::size_t size = 100) {
  Operation op;
  op.key = key;
  op.kind = OpKind::kPut;
  op.outcome = outcome;
  op.start = at(from);
  op.end = at(to);
  op.digest = digest(make_value(id, size));
  op.size = size;
  return op;
}

Operation erase(const std::string& key, int from, int to, Outcome outcome) {
  Operation op;
  op.key = key;
  op.kind = OpKind::kDelete;
  op.outcome = outcome;
  op.start = at(from);
  op.end = at(to);
  return op;
}

Operation read(const std::string& key, int from, int to, std::optional<std::uint64_t> id,
               std::size_t size = 100) {
  Operation op;
  op.key = key;
  op.kind = OpKind::kGet;
  op.outcome = Outcome::kAcknowledged;
  op.start = at(from);
  op.end = at(to);
  if (id) {
    op.found = true;
    op.digest = digest(make_value(*id, size));
    op.size = size;
  }
  return op;
}

FinalRead final_value(const std::string& key, std::uint64_t id, std::size_t size = 100) {
  return {key, true, digest(make_value(id, size)), size};
}

FinalRead final_absent(const std::string& key) { return {key, false, 0, 0}; }

TEST(Values, DifferByIdAndAreReproducible) {
  EXPECT_EQ(make_value(7, 4096), make_value(7, 4096));
  EXPECT_NE(make_value(7, 4096), make_value(8, 4096));
  EXPECT_NE(digest(make_value(7, 8)), digest(make_value(8, 8)));
  EXPECT_EQ(make_value(7, 0), "");
  EXPECT_EQ(make_value(7, 100).size(), 100U);
  // A value torn in its middle is no value written.
  auto torn = make_value(7, 4096);
  torn.replace(2048, 2048, make_value(8, 4096).substr(2048));
  EXPECT_NE(digest(torn), digest(make_value(7, 4096)));
  EXPECT_NE(digest(torn), digest(make_value(8, 4096)));
}

TEST(CheckFinal, AnAcknowledgedWriteThatReadsBackIsFine) {
  const std::vector ops{write("k", 0, 10, Outcome::kAcknowledged, 1)};
  EXPECT_TRUE(check_final(ops, {final_value("k", 1)}).empty());
}

TEST(CheckFinal, AnAcknowledgedWriteThatIsGoneIsALostWrite) {
  const std::vector ops{write("k", 0, 10, Outcome::kAcknowledged, 1)};
  const auto violations = check_final(ops, {final_absent("k")});
  ASSERT_EQ(violations.size(), 1U);
  EXPECT_NE(violations[0].what.find("lost"), std::string::npos) << violations[0].what;
  EXPECT_EQ(violations[0].history.size(), 1U);
}

TEST(CheckFinal, AnOlderValueAfterALaterAcknowledgedOverwriteIsAnUndoneWrite) {
  const std::vector ops{write("k", 0, 10, Outcome::kAcknowledged, 1),
                        write("k", 20, 30, Outcome::kAcknowledged, 2)};
  EXPECT_TRUE(check_final(ops, {final_value("k", 2)}).empty());
  EXPECT_EQ(check_final(ops, {final_value("k", 1)}).size(), 1U);
}

TEST(CheckFinal, ConcurrentAcknowledgedWritesMayEndEitherWay) {
  const std::vector ops{write("k", 0, 20, Outcome::kAcknowledged, 1),
                        write("k", 10, 30, Outcome::kAcknowledged, 2)};
  EXPECT_TRUE(check_final(ops, {final_value("k", 1)}).empty());
  EXPECT_TRUE(check_final(ops, {final_value("k", 2)}).empty());
}

TEST(CheckFinal, AnUnknownWriteMayOrMayNotHaveHappened) {
  const std::vector ops{write("k", 0, 10, Outcome::kAcknowledged, 1),
                        write("k", 20, 30, Outcome::kUnknown, 2)};
  EXPECT_TRUE(check_final(ops, {final_value("k", 1)}).empty());
  EXPECT_TRUE(check_final(ops, {final_value("k", 2)}).empty());
}

TEST(CheckFinal, AnUnknownWriteIsOrderedWithinItsOwnTime) {
  // It ended before the acknowledged write began: it cannot come after it,
  // even if its commit landed late.
  const std::vector ops{write("k", 0, 10, Outcome::kUnknown, 1),
                        write("k", 20, 30, Outcome::kAcknowledged, 2)};
  EXPECT_EQ(check_final(ops, {final_value("k", 1)}).size(), 1U);
}

TEST(CheckFinal, ARefusedWriteMustNeverBeRead) {
  const std::vector ops{write("k", 0, 10, Outcome::kAcknowledged, 1),
                        write("k", 20, 30, Outcome::kRefused, 2)};
  EXPECT_TRUE(check_final(ops, {final_value("k", 1)}).empty());
  EXPECT_EQ(check_final(ops, {final_value("k", 2)}).size(), 1U);
}

TEST(CheckFinal, AnAcknowledgedDeleteStaysDeletedUnlessAWriteFollowed) {
  const std::vector ops{write("k", 0, 10, Outcome::kAcknowledged, 1),
                        erase("k", 20, 30, Outcome::kAcknowledged)};
  EXPECT_TRUE(check_final(ops, {final_absent("k")}).empty());
  const auto resurrected = check_final(ops, {final_value("k", 1)});
  ASSERT_EQ(resurrected.size(), 1U);
  EXPECT_EQ(resurrected[0].history.size(), 2U);

  auto rewritten = ops;
  rewritten.push_back(write("k", 40, 50, Outcome::kAcknowledged, 2));
  EXPECT_TRUE(check_final(rewritten, {final_value("k", 2)}).empty());
  EXPECT_EQ(check_final(rewritten, {final_absent("k")}).size(), 1U);
}

TEST(CheckFinal, AWriteInFlightDuringADeleteMayBeOrderedEitherSide) {
  const std::vector ops{write("k", 0, 30, Outcome::kUnknown, 1),
                        erase("k", 10, 20, Outcome::kAcknowledged)};
  EXPECT_TRUE(check_final(ops, {final_absent("k")}).empty());
  EXPECT_TRUE(check_final(ops, {final_value("k", 1)}).empty());
}

TEST(CheckFinal, BytesNoWriteMadeAreTorn) {
  const std::vector ops{write("k", 0, 10, Outcome::kAcknowledged, 1)};
  const auto violations = check_final(ops, {final_value("k", 99)});
  ASSERT_EQ(violations.size(), 1U);
  EXPECT_NE(violations[0].what.find("torn"), std::string::npos) << violations[0].what;
}

TEST(CheckFinal, AKeyNeverWrittenSuccessfullyIsAbsent) {
  const std::vector ops{write("k", 0, 10, Outcome::kRefused, 1)};
  EXPECT_TRUE(check_final(ops, {final_absent("k")}).empty());
}

TEST(CheckReads, AReadSeesTheValueOfItsTime) {
  const std::vector ops{write("k", 0, 10, Outcome::kAcknowledged, 1),
                        read("k", 5, 15, 1),            // concurrent with the write
                        read("k", 12, 14, 1),           // after it
                        read("k", 2, 4, std::nullopt),  // before it ended: may miss it
                        write("k", 20, 30, Outcome::kAcknowledged, 2),
                        read("k", 25, 26, 1),   // concurrent with the overwrite
                        read("k", 25, 26, 2)};  // or already the new value
  EXPECT_TRUE(check_reads(ops).empty());
}

TEST(CheckReads, AStaleReadAfterAnAcknowledgedOverwriteIsAViolation) {
  const std::vector ops{write("k", 0, 10, Outcome::kAcknowledged, 1),
                        write("k", 20, 30, Outcome::kAcknowledged, 2), read("k", 40, 41, 1)};
  EXPECT_EQ(check_reads(ops).size(), 1U);
}

TEST(CheckReads, AMissAfterAnAcknowledgedWriteIsAViolation) {
  const std::vector ops{write("k", 0, 10, Outcome::kAcknowledged, 1),
                        read("k", 20, 21, std::nullopt)};
  EXPECT_EQ(check_reads(ops).size(), 1U);
}

TEST(CheckReads, AReadOfAValueFromTheFutureIsAViolation) {
  const std::vector ops{read("k", 0, 5, 1), write("k", 10, 20, Outcome::kAcknowledged, 1)};
  EXPECT_EQ(check_reads(ops).size(), 1U);
}

TEST(Report, NamesTheSeedAndEachOperationOfTheKey) {
  const std::vector ops{write("k", 0, 10, Outcome::kAcknowledged, 1)};
  const auto text = report(check_final(ops, {final_absent("k")}), kEpoch, 1234);
  EXPECT_NE(text.find("KALAVARA_FAULT_SEED=1234"), std::string::npos) << text;
  EXPECT_NE(text.find("client 0 put k"), std::string::npos) << text;
  EXPECT_NE(summarize(ops).find("put 1/0/0"), std::string::npos) << summarize(ops);
}

}  // namespace
}  // namespace kalavara::faults
