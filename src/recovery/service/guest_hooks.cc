#include "recovery/service/guest_hooks.h"

#include <chrono>
#include <sstream>
#include <thread>

#include "core/base64.h"

namespace stratus::recovery::service {
namespace {

// Runner exit codes.
constexpr int kRunnerNoHooks = 11;
constexpr int kRunnerHookFailed = 10;

std::string LastLines(const std::string& text, size_t max_lines, size_t max_bytes) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::string out;
  size_t from = lines.size() > max_lines ? lines.size() - max_lines : 0;
  for (size_t i = from; i < lines.size(); ++i) out += (out.empty() ? "" : "\n") + lines[i];
  if (out.size() > max_bytes) out = out.substr(out.size() - max_bytes);
  return out;
}

}  // namespace

Json GuestHookRun::ToJson() const {
  Json j = {{"phase", phase}, {"hooks", hooks}, {"succeeded", ok}};
  if (!failed_hook.empty()) {
    j["failedHook"] = failed_hook;
    j["exitCode"] = exit_code;
    j["output"] = output;
  }
  if (!problem.empty()) j["problem"] = problem;
  return j;
}

std::string GuestHookScript(const std::string& phase, int timeout_s, const std::string& dir) {
  // Output protocol: "HOOK <rc> <path>" per hook, then on failure the hook's output between
  // "OUTPUT-BEGIN" and "OUTPUT-END". Exit: 0 all ok, 10 a hook failed, 11 no hooks.
  std::string order = phase == "pre" ? "ls -1" : "ls -1r";
  std::string stop = phase == "pre" ? "break" : ":";
  return "d='" + dir + "'; n=0; fail=0; out=$(mktemp 2>/dev/null || echo /tmp/stratus-hook.$$); "
         "[ -d \"$d\" ] || exit " + std::to_string(kRunnerNoHooks) + "; "
         "for name in $(" + order + " \"$d\"); do f=\"$d/$name\"; "
         "[ -f \"$f\" ] && [ -x \"$f\" ] || continue; n=$((n+1)); "
         "if command -v timeout >/dev/null 2>&1; then timeout -k 5 " + std::to_string(timeout_s) +
         " \"$f\" " + phase + " >\"$out\" 2>&1 </dev/null; else \"$f\" " + phase +
         " >\"$out\" 2>&1 </dev/null; fi; rc=$?; echo \"HOOK $rc $f\"; "
         "if [ $rc -ne 0 ] && [ $fail -eq 0 ]; then fail=1; echo OUTPUT-BEGIN; tail -n 5 \"$out\"; echo; echo OUTPUT-END; "
         + stop + "; fi; done; rm -f \"$out\"; "
         "[ $n -gt 0 ] || exit " + std::to_string(kRunnerNoHooks) + "; "
         "[ $fail -eq 0 ] || exit " + std::to_string(kRunnerHookFailed) + "; exit 0";
}

void ParseGuestHookOutput(const std::string& out, int exit_code, GuestHookRun* run) {
  run->agent_ok = true;
  std::istringstream in(out);
  std::string line, tail;
  bool in_output = false;
  while (std::getline(in, line)) {
    if (in_output) {
      if (line == "OUTPUT-END") {
        in_output = false;
      } else if (!line.empty()) {
        tail += (tail.empty() ? "" : "\n") + line;
      }
      continue;
    }
    if (line == "OUTPUT-BEGIN") {
      in_output = true;
      continue;
    }
    if (line.rfind("HOOK ", 0) == 0) {
      ++run->hooks;
      size_t sp = line.find(' ', 5);
      int rc = 0;
      try {
        rc = std::stoi(line.substr(5, sp - 5));
      } catch (...) {
        rc = -1;
      }
      if (rc != 0 && run->failed_hook.empty()) {
        run->failed_hook = sp == std::string::npos ? "?" : line.substr(sp + 1);
        run->exit_code = rc;
      }
    }
  }
  run->output = LastLines(tail, 5, 1024);
  if (exit_code == kRunnerNoHooks && run->hooks == 0) {
    run->problem = std::string("the guest has no backup hooks (no executable in ") +
                   kGuestHookDir + ")";
  } else if (!run->failed_hook.empty()) {
    run->problem = "the " + run->phase + "-backup hook " + run->failed_hook +
                   (run->exit_code == 124 ? " timed out" : " exited with " +
                                                               std::to_string(run->exit_code));
    if (!run->output.empty()) run->problem += ": " + run->output;
  } else if (exit_code != 0) {
    run->problem = "the " + run->phase + "-backup hook runner exited with " +
                   std::to_string(exit_code);
  } else {
    run->ok = run->hooks > 0;
  }
}

GuestAgentFn AgentOf(compute::Hypervisor* hv, const std::string& domain) {
  return [hv, domain](const Json& command, int timeout_s) {
    return hv->AgentCommand(domain, command, timeout_s);
  };
}

Result<GuestExecResult> RunGuestShell(const GuestAgentFn& agent, const std::string& script,
                                      int wait_s) {
  Json exec = {{"execute", "guest-exec"},
               {"arguments",
                {{"path", "/bin/sh"},
                 {"arg", Json::array({"-c", script})},
                 {"capture-output", true}}}};
  auto started = agent(exec, 10);
  if (!started.ok() || !started->contains("pid")) {
    return Status(StatusCode::kUnavailable, "GuestExecFailed",
                  started.ok() ? "no pid in its answer" : started.status().message());
  }
  int64_t pid = (*started)["pid"].get<int64_t>();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_s);
  for (;;) {
    auto st = agent(Json{{"execute", "guest-exec-status"}, {"arguments", {{"pid", pid}}}}, 10);
    if (!st.ok()) return Status(StatusCode::kUnavailable, "GuestAgentLost", st.status().message());
    if (st->value("exited", false)) {
      GuestExecResult r;
      r.exit_code = st->value("exitcode", -1);
      auto out = Base64Decode(st->value("out-data", std::string()));
      if (out.ok()) r.out = std::move(out).value();
      return r;
    }
    if (std::chrono::steady_clock::now() > deadline)
      return Status(StatusCode::kUnavailable, "GuestExecTimeout",
                    "did not finish within " + std::to_string(wait_s) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

GuestHookRun RunGuestHooks(const GuestAgentFn& agent, const std::string& phase, int timeout_s) {
  GuestHookRun run;
  run.phase = phase;
  // Hooks run one after another; allow each its timeout, plus slack, up to a bound.
  auto r = RunGuestShell(agent, GuestHookScript(phase, timeout_s), timeout_s * 4 + 30);
  if (r.ok()) {
    ParseGuestHookOutput(r->out, r->exit_code, &run);
  } else if (r.status().arm_code() == "GuestExecFailed") {
    run.problem = "the guest agent could not run the " + phase + "-backup hooks: " +
                  r.status().message();
  } else if (r.status().arm_code() == "GuestAgentLost") {
    run.problem = "the guest agent stopped answering during the " + phase +
                  "-backup hooks: " + r.status().message();
  } else {
    run.problem = "the " + phase + "-backup hooks " + r.status().message();
  }
  return run;
}

}  // namespace stratus::recovery::service
