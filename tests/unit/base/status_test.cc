#include "daemon/base/status.h"

#include <gtest/gtest.h>

#include <memory>

namespace tandem {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  TANDEM_ASSIGN_OR_RETURN(int h, Half(x));
  TANDEM_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  TANDEM_RETURN_IF_ERROR(Half(x).status());
  return OkStatus();
}

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(Status, ToStringNamesCodeAndMessage) {
  EXPECT_EQ(NotFoundError("case 'c1'").ToString(), "not_found: case 'c1'");
  EXPECT_EQ(OutOfRangeError("x").code(), StatusCode::kOutOfRange);
}

TEST(Status, WithPrefixKeepsCode) {
  Status s = InvalidArgumentError("field 'days'").WithPrefix("a.yaml:4");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "a.yaml:4: field 'days'");
  EXPECT_TRUE(OkStatus().WithPrefix("x").ok());
}

TEST(Result, AssignOrReturnPropagatesFirstError) {
  ASSERT_TRUE(Quarter(8).ok());
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);  // 6/2 = 3 is odd
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd: 3");
}

TEST(Result, ReturnIfErrorStopsAtFailure) {
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5).code(), StatusCode::kInvalidArgument);
}

TEST(Result, HoldsMoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(ResultDeathTest, ValueOfFailedResultAborts) {
  Result<int> r = NotFoundError("x");
  EXPECT_DEATH((void)r.value(), "check failed");
}

}  // namespace
}  // namespace tandem
