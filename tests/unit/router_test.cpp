#include "common/router.hpp"

#include <gtest/gtest.h>

namespace kalavara::http {
namespace {

Handler answer(HttpStatus status) {
  return [status](Exchange&) -> asio::awaitable<std::optional<Response>> {
    co_return text_response(status, "x");
  };
}

TEST(Router, ResolvesExactAndPrefixRoutes) {
  Router router;
  router.add("/store/", Router::Match::kPrefix, {Verb::get, Verb::put}, answer(HttpStatus::ok));
  router.add("/admin/add-volume", Router::Match::kExact, {Verb::post}, answer(HttpStatus::ok));
  EXPECT_TRUE(std::holds_alternative<const Handler*>(router.resolve(Verb::get, "/store/a/b")));
  EXPECT_TRUE(
      std::holds_alternative<const Handler*>(router.resolve(Verb::post, "/admin/add-volume")));
}

TEST(Router, Answers404ForUnknownPaths) {
  Router router;
  router.add("/admin/add-volume", Router::Match::kExact, {Verb::post}, answer(HttpStatus::ok));
  auto result = router.resolve(Verb::post, "/admin/add-volume/extra");
  ASSERT_TRUE(std::holds_alternative<Response>(result));
  EXPECT_EQ(std::get<Response>(result).result(), HttpStatus::not_found);
}

TEST(Router, Answers405WithAllowForWrongMethods) {
  Router router;
  router.add("/store/", Router::Match::kPrefix, {Verb::get, Verb::delete_}, answer(HttpStatus::ok));
  auto result = router.resolve(Verb::post, "/store/k");
  ASSERT_TRUE(std::holds_alternative<Response>(result));
  const auto& response = std::get<Response>(result);
  EXPECT_EQ(response.result(), HttpStatus::method_not_allowed);
  EXPECT_EQ(response[Field::allow], "GET, DELETE");
}

TEST(TextResponse, IsOneLineOfPlainText) {
  auto response = error_response({413, "too big"});
  EXPECT_EQ(response.result_int(), 413U);
  EXPECT_EQ(response.body(), "too big\n");
  EXPECT_EQ(response[Field::content_length], "8");
}

}  // namespace
}  // namespace kalavara::http

namespace kalavara::http {
namespace {

TEST(Router, MergesRoutesThatShareAPath) {
  Router router;
  router.add("/store/", Router::Match::kPrefix, {Verb::get, Verb::head}, answer(HttpStatus::ok));
  router.add("/store/", Router::Match::kPrefix, {Verb::put}, answer(HttpStatus::created));
  router.add("/other", Router::Match::kExact, {Verb::post}, answer(HttpStatus::ok));
  EXPECT_TRUE(std::holds_alternative<const Handler*>(router.resolve(Verb::put, "/store/k")));
  EXPECT_TRUE(std::holds_alternative<const Handler*>(router.resolve(Verb::head, "/store/k")));
  auto result = router.resolve(Verb::post, "/store/k");
  ASSERT_TRUE(std::holds_alternative<Response>(result));
  EXPECT_EQ(std::get<Response>(result)[Field::allow], "GET, HEAD, PUT");
}

}  // namespace
}  // namespace kalavara::http
