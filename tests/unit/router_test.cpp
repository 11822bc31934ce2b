#include "common/router.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace kalavara::http {
namespace {

Handler answer(HttpStatus status) {
  return [status](Exchange&) -> asio::awaitable<Reply> { co_return text_response(status, "x"); };
}

TEST(Router, ResolvesExactAndPrefixRoutes) {
  Router router;
  router.add("/store/", Router::Match::kPrefix, {Verb::get, Verb::put}, answer(HttpStatus::ok));
  router.add("/admin/add-volume", Router::Match::kExact, {Verb::post}, answer(HttpStatus::ok));
  EXPECT_TRUE(std::holds_alternative<Router::Matched>(router.resolve(Verb::get, "/store/a/b")));
  EXPECT_TRUE(
      std::holds_alternative<Router::Matched>(router.resolve(Verb::post, "/admin/add-volume")));
}

// The label of the route that takes `method` on `path`, or "(none)".
std::string route_of(const Router& router, Verb method, std::string_view path) {
  const auto result = router.resolve(method, path);
  const auto* matched = std::get_if<Router::Matched>(&result);
  return matched ? std::string(matched->route) : "(none)";
}

TEST(Router, LabelsAMatchWithTheRouteItsPathWasRegisteredWith) {
  Router router;
  router.add("/store/", Router::Match::kPrefix, {Verb::get, Verb::head}, answer(HttpStatus::ok));
  router.add("/store/", Router::Match::kPrefix, {Verb::put}, answer(HttpStatus::created));
  router.add("/healthz", Router::Match::kExact, {Verb::get}, answer(HttpStatus::ok));
  // Every key gets the prefix's label, whichever of the merged routes
  // takes the method: one label per resource, not per path.
  EXPECT_EQ(route_of(router, Verb::get, "/store/a/b"), "/store/");
  EXPECT_EQ(route_of(router, Verb::put, "/store/other"), "/store/");
  EXPECT_EQ(route_of(router, Verb::head, "/store/"), "/store/");
  EXPECT_EQ(route_of(router, Verb::get, "/healthz"), "/healthz");
  EXPECT_EQ(route_of(router, Verb::get, "/healthz/x"), "(none)");
  EXPECT_EQ(route_of(router, Verb::delete_, "/store/k"), "(none)");
}

TEST(Router, TheRouteLabelAndHandlerAreTheRoutersOwn) {
  Router router;
  router.add("/store/", Router::Match::kPrefix, {Verb::get}, answer(HttpStatus::ok));
  router.add("/store/", Router::Match::kPrefix, {Verb::put}, answer(HttpStatus::created));
  const std::string one = "/store/one";
  const std::string two = "/store/two";
  const auto first = router.resolve(Verb::get, one);
  const auto second = router.resolve(Verb::get, two);
  const auto put = router.resolve(Verb::put, two);
  ASSERT_TRUE(std::holds_alternative<Router::Matched>(first));
  ASSERT_TRUE(std::holds_alternative<Router::Matched>(second));
  ASSERT_TRUE(std::holds_alternative<Router::Matched>(put));
  const auto& a = std::get<Router::Matched>(first);
  const auto& b = std::get<Router::Matched>(second);
  const auto& c = std::get<Router::Matched>(put);
  // Not a view of the request's path: the same storage for every request
  // to the resource, whichever of its routes takes the method.
  EXPECT_EQ(a.route.data(), b.route.data());
  EXPECT_EQ(a.route.data(), c.route.data());
  EXPECT_EQ(a.handler, b.handler);
  EXPECT_NE(a.handler, c.handler);
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
  auto response = error_response({Errc::kTooLarge, "too big"});
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
  EXPECT_TRUE(std::holds_alternative<Router::Matched>(router.resolve(Verb::put, "/store/k")));
  EXPECT_TRUE(std::holds_alternative<Router::Matched>(router.resolve(Verb::head, "/store/k")));
  auto result = router.resolve(Verb::post, "/store/k");
  ASSERT_TRUE(std::holds_alternative<Response>(result));
  EXPECT_EQ(std::get<Response>(result)[Field::allow], "GET, HEAD, PUT");
}

}  // namespace
}  // namespace kalavara::http

namespace kalavara::http {
namespace {

TEST(SerializeResponse, WritesStatusLineFieldsAndBody) {
  auto response = text_response(HttpStatus::not_found, "no such key");
  response.set(Field::etag, "\"x\"");
  std::string out;
  serialize_response(response, true, out);
  EXPECT_EQ(out,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 12\r\nETag: \"x\"\r\n\r\nno such key\n");
  std::string head_only;
  serialize_response(response, false, head_only);
  EXPECT_EQ(head_only, out.substr(0, out.size() - 12));
  response.version(10);
  response.keep_alive(true);
  std::string old;
  serialize_response(response, false, old);
  EXPECT_TRUE(old.starts_with("HTTP/1.0 404 Not Found\r\n"));
  EXPECT_NE(old.find("Connection: keep-alive\r\n"), std::string::npos);
}

}  // namespace
}  // namespace kalavara::http
