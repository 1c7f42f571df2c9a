#include "compute/block_jobs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stratus::compute {
namespace {

using ::testing::HasSubstr;

// An engine that does not override the optional capability.
class EngineWithoutBlockJobs final : public BlockJobs {};

TEST(BlockJobsTest, DefaultsSayTheEngineCannotAndNameTheDomain) {
  EngineWithoutBlockJobs engine;
  Status pull = engine.BlockPull("stratus-a", "vda");
  EXPECT_EQ(pull.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pull.arm_code(), "NotSupported");
  EXPECT_EQ(pull.http_status(), 400);
  EXPECT_THAT(pull.message(), HasSubstr("stratus-a"));

  auto job = engine.GetBlockJob("stratus-b", "vda");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().arm_code(), "NotSupported");
  EXPECT_THAT(job.status().message(), HasSubstr("stratus-b"));
}

}  // namespace
}  // namespace stratus::compute
