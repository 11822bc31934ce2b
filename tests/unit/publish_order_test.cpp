#include "volume/publish_order.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace kalavara {
namespace {

TEST(PublishOrder, DropsAWriteOvertakenByALaterCommittedOne) {
  PublishOrder order;
  std::vector<int> published;
  auto older = std::make_unique<PublishOrder::Ticket>(order, "k");
  auto newer = std::make_unique<PublishOrder::Ticket>(order, "k");
  // Committed as versions 1 and 2, but the newer write renames first.
  EXPECT_TRUE(newer
                  ->publish(2,
                            [&] {
                              published.push_back(2);
                              return Status{};
                            })
                  .value());
  EXPECT_FALSE(older
                   ->publish(1,
                             [&] {
                               published.push_back(1);
                               return Status{};
                             })
                   .value());
  EXPECT_EQ(published, std::vector<int>{2});
}

TEST(PublishOrder, PublishesInCommitOrderAndForgetsFinishedKeys) {
  PublishOrder order;
  int runs = 0;
  {
    PublishOrder::Ticket first(order, "k");
    EXPECT_TRUE(first
                    .publish(5,
                             [&] {
                               ++runs;
                               return Status{};
                             })
                    .value());
  }
  // A later write of the key starts from scratch, whatever its version.
  PublishOrder::Ticket later(order, "k");
  EXPECT_TRUE(later
                  .publish(1,
                           [&] {
                             ++runs;
                             return Status{};
                           })
                  .value());
  EXPECT_EQ(runs, 2);
}

TEST(PublishOrder, PassesPublishFailuresOn) {
  PublishOrder order;
  PublishOrder::Ticket ticket(order, "k");
  auto result = ticket.publish(1, [] { return Status{Error{507, "volume is full"}}; });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().status, 507);
}

}  // namespace
}  // namespace kalavara
