#include "common/conditional.hpp"

#include <gtest/gtest.h>

namespace kalavara {
namespace {

constexpr std::string_view kTag = "\"abc\"";

TEST(IfNoneMatch, UsesWeakComparison) {
  EXPECT_TRUE(if_none_match_matches("\"abc\"", kTag));
  EXPECT_TRUE(if_none_match_matches("W/\"abc\"", kTag));
  EXPECT_TRUE(if_none_match_matches("\"x\", \"abc\"", kTag));
  EXPECT_TRUE(if_none_match_matches(" * ", kTag));
  EXPECT_FALSE(if_none_match_matches("\"abd\"", kTag));
  EXPECT_FALSE(if_none_match_matches("abc", kTag));
  EXPECT_FALSE(if_none_match_matches("*", std::nullopt));
  EXPECT_FALSE(if_none_match_matches("\"abc\"", std::nullopt));
}

TEST(IfMatch, UsesStrongComparison) {
  EXPECT_TRUE(if_match_matches("\"abc\"", kTag));
  EXPECT_TRUE(if_match_matches("\"x\",\"abc\"", kTag));
  EXPECT_TRUE(if_match_matches("*", kTag));
  EXPECT_FALSE(if_match_matches("W/\"abc\"", kTag));
  EXPECT_FALSE(if_match_matches("\"ab\"", kTag));
  EXPECT_FALSE(if_match_matches("*", std::nullopt));
}

TEST(IfRange, NeedsAnExactStrongTag) {
  EXPECT_TRUE(if_range_matches("\"abc\"", kTag));
  EXPECT_FALSE(if_range_matches("W/\"abc\"", kTag));
  EXPECT_FALSE(if_range_matches("Wed, 21 Oct 2015 07:28:00 GMT", kTag));
}

TEST(WritePreconditions, CreateOnlyAndOptimisticWrites) {
  EXPECT_TRUE(check_write_preconditions("", "", kTag).ok());
  EXPECT_TRUE(check_write_preconditions("", "*", std::nullopt).ok());
  auto exists = check_write_preconditions("", "*", kTag);
  ASSERT_FALSE(exists.ok());
  EXPECT_EQ(exists.error().code, Errc::kPreconditionFailed);
  EXPECT_TRUE(check_write_preconditions("\"abc\"", "", kTag).ok());
  EXPECT_EQ(check_write_preconditions("\"abd\"", "", kTag).error().code, Errc::kPreconditionFailed);
  EXPECT_EQ(check_write_preconditions("\"abc\"", "", std::nullopt).error().code,
            Errc::kPreconditionFailed);
}

}  // namespace
}  // namespace kalavara
