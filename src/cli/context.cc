#include "cli/context.h"

namespace stratus::cli {

CliStatus Context::Show(const std::string& path, const TableSpec& spec) {
  CLI_ASSIGN_OR_RETURN(Json body, client_.Get(path));
  PrintOne(out_, format_, spec, body);
  return CliStatus::Ok();
}

CliStatus Context::List(const std::string& path, const TableSpec& spec) {
  CLI_ASSIGN_OR_RETURN(std::vector<Json> items, client_.ListAll(path));
  PrintMany(out_, format_, spec, items);
  return CliStatus::Ok();
}

CliResult<Context::WriteOutcome> Context::Write(const std::string& method, const std::string& path,
                                                const Json* body, OnOperationFailure on_failure) {
  WriteOutcome outcome;
  CLI_ASSIGN_OR_RETURN(outcome.response, client_.Send(method, path, body));
  const std::string& op_url = outcome.response.async_operation;
  if (op_url.empty()) return outcome;
  if (no_wait_) {
    std::string op_path = PathOfUrl(op_url);
    Json pending = {{"operationId", NameFromId(op_path.substr(0, op_path.find('?')))},
                    {"url", op_url}};
    PrintOne(out_, format_, PendingOperationTable(), pending);
    outcome.pending = true;
    return outcome;
  }
  if (on_failure == OnOperationFailure::kReturnResult) {
    CLI_ASSIGN_OR_RETURN(outcome.operation, client_.WaitForOperationEnd(op_url));
  } else {
    CLI_ASSIGN_OR_RETURN(outcome.operation, client_.WaitForOperation(op_url));
  }
  return outcome;
}

CliStatus Context::WriteAndShow(const std::string& method, const std::string& path,
                                const Json* body, const std::string& show_path,
                                const TableSpec& spec) {
  CLI_ASSIGN_OR_RETURN(WriteOutcome outcome, Write(method, path, body));
  if (outcome.pending || show_path.empty()) return CliStatus::Ok();
  const Json& answered = outcome.response.body;
  if (!outcome.operation.has_value() && answered.is_object() && answered.contains("id") &&
      show_path == path) {
    PrintOne(out_, format_, spec, answered);
    return CliStatus::Ok();
  }
  return Show(show_path, spec);
}

}  // namespace stratus::cli
