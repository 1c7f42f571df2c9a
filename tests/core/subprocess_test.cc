#include "core/subprocess.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace stratus {
namespace {

using ::testing::HasSubstr;

TEST(RunProcessTest, CapturesStdoutAndExitCodeZero) {
  auto r = RunProcess({"echo", "hello", "world"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, "hello world\n");
  EXPECT_EQ(r->err, "");
}

TEST(RunProcessTest, ReportsNonZeroExitCodes) {
  auto r = RunProcess({"sh", "-c", "exit 7"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 7);
  auto f = RunProcess({"false"});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->exit_code, 1);
}

TEST(RunProcessTest, CapturesStderrSeparately) {
  auto r = RunProcess({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(RunProcessTest, SignalledChildReports128PlusSignal) {
  auto r = RunProcess({"sh", "-c", "kill -9 $$"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 128 + 9);
}

TEST(RunProcessTest, LargeOutputOnBothStreamsDoesNotDeadlock) {
  // 1 MiB on each stream: more than a pipe buffer, so both must be drained concurrently.
  auto r = RunProcess(
      {"sh", "-c", "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out.size(), 1048576u);
  EXPECT_EQ(r->err.size(), 1048576u);
}

TEST(RunProcessTest, StdinIsDevNull) {
  auto r = RunProcess({"cat"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, "");
}

TEST(RunProcessTest, ArgumentsAreNotInterpretedByAShell) {
  auto r = RunProcess({"echo", "$HOME;", "`id`", "a b"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "$HOME; `id` a b\n");
}

TEST(RunProcessTest, MissingProgramIsAnErrorNamingIt) {
  auto r = RunProcess({"stratus-no-such-program-xyz", "--help"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_THAT(r.status().message(), HasSubstr("stratus-no-such-program-xyz"));
}

TEST(RunProcessTest, EmptyCommandLineIsInvalid) {
  auto r = RunProcess({});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(RunCheckedTest, ReturnsStdoutOnSuccess) {
  auto r = RunChecked({"printf", "%s", "abc"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "abc");
}

TEST(RunCheckedTest, NonZeroExitNamesCommandCodeAndStderr) {
  auto r = RunChecked({"sh", "-c", "echo 'disk is full' >&2; exit 4"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_THAT(r.status().message(), HasSubstr("sh -c"));
  EXPECT_THAT(r.status().message(), HasSubstr("exited with 4"));
  EXPECT_THAT(r.status().message(), HasSubstr("disk is full"));
  EXPECT_THAT(r.status().message(), ::testing::Not(HasSubstr("full\n")));
}

TEST(RunCheckedTest, FallsBackToStdoutWhenStderrIsEmpty) {
  auto r = RunChecked({"sh", "-c", "echo only-stdout; exit 2"});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("only-stdout"));
}

TEST(RunCheckedTest, MissingProgramIsAnError) {
  EXPECT_FALSE(RunChecked({"stratus-no-such-program-xyz"}).ok());
}

}  // namespace
}  // namespace stratus
