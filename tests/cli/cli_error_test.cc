#include "cli/cli_error.h"

#include <gtest/gtest.h>

namespace stratus::cli {
namespace {

std::string ArmError(const std::string& code, const std::string& message) {
  return Json{{"error", {{"code", code}, {"message", message}, {"target", "name"}}}}.dump();
}

struct Case {
  int http_status;
  const char* code;
  ExitCode exit_code;
};

TEST(ErrorFromHttpResponseTest, MapsStatusToExitCode) {
  for (const Case& c : {Case{400, "InvalidResourceName", ExitCode::kApiClientError},
                        Case{401, "AuthenticationFailed", ExitCode::kApiClientError},
                        Case{404, "ResourceNotFound", ExitCode::kNotFound},
                        Case{404, "ResourceGroupNotFound", ExitCode::kNotFound},
                        Case{405, "MethodNotAllowed", ExitCode::kApiClientError},
                        Case{409, "OperationNotAllowed", ExitCode::kConflict},
                        Case{409, "DiskAttached", ExitCode::kConflict},
                        Case{412, "PreconditionFailed", ExitCode::kApiClientError},
                        Case{413, "RequestEntityTooLarge", ExitCode::kApiClientError},
                        Case{500, "InternalServerError", ExitCode::kUnavailable},
                        Case{503, "ServiceUnavailable", ExitCode::kUnavailable}}) {
    CliError e = ErrorFromHttpResponse(c.http_status, ArmError(c.code, "it broke"), "GET /x");
    EXPECT_EQ(e.exit_code(), c.exit_code) << c.http_status << " " << c.code;
    EXPECT_EQ(e.code(), c.code);
    EXPECT_EQ(e.message(), "it broke");
    EXPECT_EQ(e.target(), "name");
    EXPECT_EQ(e.ToString(), std::string("ERROR: (") + c.code + ") it broke");
  }
  EXPECT_EQ(static_cast<int>(ExitCode::kApiClientError), 3);
  EXPECT_EQ(static_cast<int>(ExitCode::kNotFound), 4);
  EXPECT_EQ(static_cast<int>(ExitCode::kConflict), 5);
  EXPECT_EQ(static_cast<int>(ExitCode::kUnavailable), 6);
  EXPECT_EQ(static_cast<int>(ExitCode::kOperationFailed), 7);
}

TEST(ErrorFromHttpResponseTest, NonArmBodyNamesTheRequest) {
  CliError e = ErrorFromHttpResponse(502, "<html>bad gateway</html>", "PUT /subscriptions/s");
  EXPECT_EQ(e.exit_code(), ExitCode::kUnavailable);
  EXPECT_EQ(e.code(), "InternalServerError");
  EXPECT_NE(e.message().find("PUT /subscriptions/s"), std::string::npos);
  EXPECT_NE(e.message().find("502"), std::string::npos);

  CliError empty = ErrorFromHttpResponse(404, "", "GET /a");
  EXPECT_EQ(empty.exit_code(), ExitCode::kNotFound);
  EXPECT_EQ(empty.code(), "NotFound");
}

TEST(OperationFailedErrorTest, UsesTheOperationsError) {
  Json op = {{"name", "op1"},
             {"status", "Failed"},
             {"error", {{"code", "DiskTooLarge"}, {"message", "no space for 2 GiB"}}}};
  CliError e = OperationFailedError(op);
  EXPECT_EQ(e.exit_code(), ExitCode::kOperationFailed);
  EXPECT_EQ(e.ToString(), "ERROR: (DiskTooLarge) no space for 2 GiB");

  CliError canceled = OperationFailedError({{"name", "op2"}, {"status", "Canceled"}});
  EXPECT_EQ(canceled.exit_code(), ExitCode::kOperationFailed);
  EXPECT_EQ(canceled.code(), "OperationCanceled");
  EXPECT_NE(canceled.message().find("op2"), std::string::npos);
}

TEST(UnreachableErrorTest, NamesTheEndpoint) {
  CliError e = UnreachableError("http://127.0.0.1:8780", "Connection");
  EXPECT_EQ(e.exit_code(), ExitCode::kUnavailable);
  EXPECT_EQ(e.message(),
            "cannot reach stratusd at http://127.0.0.1:8780: is it running? (Connection)");
}

TEST(CliResultTest, MacrosPropagateErrors) {
  auto fails = []() -> CliResult<int> { return UsageError("bad"); };
  auto uses = [&]() -> CliStatus {
    CLI_ASSIGN_OR_RETURN(int v, fails());
    (void)v;
    return CliStatus::Ok();
  };
  CliStatus st = uses();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().exit_code(), ExitCode::kUsage);
}

}  // namespace
}  // namespace stratus::cli
