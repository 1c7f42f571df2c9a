#include "core/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace stratus {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status st;
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kOk);
  EXPECT_EQ(st.http_status(), 200);
  EXPECT_EQ(st.ToString(), "OK");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(StatusTest, EveryCodeMapsToItsHttpStatus) {
  struct Case {
    StatusCode code;
    int http;
    const char* arm;
  };
  const Case cases[] = {
      {StatusCode::kOk, 200, "Ok"},
      {StatusCode::kInvalidArgument, 400, "InvalidParameter"},
      {StatusCode::kUnauthorized, 401, "AuthenticationFailed"},
      {StatusCode::kForbidden, 403, "AuthorizationFailed"},
      {StatusCode::kNotFound, 404, "ResourceNotFound"},
      {StatusCode::kMethodNotAllowed, 405, "MethodNotAllowed"},
      {StatusCode::kConflict, 409, "Conflict"},
      {StatusCode::kPreconditionFailed, 412, "PreconditionFailed"},
      {StatusCode::kPayloadTooLarge, 413, "RequestEntityTooLarge"},
      {StatusCode::kInternal, 500, "InternalServerError"},
      {StatusCode::kUnavailable, 503, "ServiceUnavailable"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(HttpStatusFor(c.code), c.http) << c.arm;
    EXPECT_STREQ(DefaultArmCode(c.code), c.arm);
    if (c.code != StatusCode::kOk) {
      Status st(c.code, c.arm, "m");
      EXPECT_FALSE(st.ok());
      EXPECT_EQ(st.http_status(), c.http);
    }
  }
}

TEST(StatusTest, ConvenienceConstructorsCarryCodeArmCodeAndTarget) {
  Status a = InvalidArgument("bad size", "properties.size");
  EXPECT_EQ(a.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a.arm_code(), "InvalidParameter");
  EXPECT_EQ(a.message(), "bad size");
  EXPECT_EQ(a.target(), "properties.size");
  EXPECT_EQ(a.http_status(), 400);

  Status b = InvalidArgument("x", "t", "InvalidSku");
  EXPECT_EQ(b.arm_code(), "InvalidSku");

  Status n = NotFound("gone");
  EXPECT_EQ(n.code(), StatusCode::kNotFound);
  EXPECT_EQ(n.arm_code(), "ResourceNotFound");
  EXPECT_EQ(n.http_status(), 404);
  EXPECT_EQ(NotFound("g", "", "ImageNotFound").arm_code(), "ImageNotFound");

  Status c = Conflict("busy", "key");
  EXPECT_EQ(c.code(), StatusCode::kConflict);
  EXPECT_EQ(c.arm_code(), "Conflict");
  EXPECT_EQ(c.http_status(), 409);

  Status p = PreconditionFailed("etag");
  EXPECT_EQ(p.code(), StatusCode::kPreconditionFailed);
  EXPECT_EQ(p.arm_code(), "PreconditionFailed");
  EXPECT_EQ(p.http_status(), 412);

  Status i = Internal("boom");
  EXPECT_EQ(i.code(), StatusCode::kInternal);
  EXPECT_EQ(i.arm_code(), "InternalServerError");
  EXPECT_EQ(i.http_status(), 500);

  Status u = Unavailable("later");
  EXPECT_EQ(u.code(), StatusCode::kUnavailable);
  EXPECT_EQ(u.arm_code(), "ServiceUnavailable");
  EXPECT_EQ(u.http_status(), 503);

  Status ns = NotSupported("no block jobs", "disk");
  EXPECT_EQ(ns.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ns.arm_code(), "NotSupported");
  EXPECT_EQ(ns.target(), "disk");
  EXPECT_EQ(ns.http_status(), 400);
}

TEST(StatusTest, ToStringNamesCodeMessageAndTarget) {
  EXPECT_EQ(InvalidArgument("bad", "vmSize", "UnknownVmSize").ToString(),
            "UnknownVmSize: bad (target: vmSize)");
  EXPECT_EQ(Internal("boom").ToString(), "InternalServerError: boom");
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<std::string> v = std::string("value");
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(static_cast<bool>(v));
  EXPECT_EQ(*v, "value");
  EXPECT_EQ(v->size(), 5u);
  EXPECT_TRUE(v.status().ok());

  Result<std::string> e = NotFound("nope");
  EXPECT_FALSE(e.ok());
  EXPECT_FALSE(static_cast<bool>(e));
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(e.status().message(), "nope");
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

Status FailIfNegative(int x) { return x < 0 ? InvalidArgument("negative") : Status::Ok(); }

Status UseReturnIfError(int x, int* reached) {
  RETURN_IF_ERROR(FailIfNegative(x));
  ++*reached;
  return Status::Ok();
}

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtTheFirstError) {
  int reached = 0;
  EXPECT_TRUE(UseReturnIfError(1, &reached).ok());
  EXPECT_EQ(reached, 1);
  Status st = UseReturnIfError(-1, &reached);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reached, 1);
}

TEST(StatusMacrosTest, AssignOrReturnPropagatesTheInnerStatus) {
  auto ok = Quarter(12);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 3);
  auto bad = Quarter(6);  // 6 -> 3 -> odd
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "odd 3");
}

}  // namespace
}  // namespace stratus
