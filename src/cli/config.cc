#include "cli/config.h"

#include "core/fs.h"

namespace stratus::cli {
namespace {

CliError ConfigError(const std::string& source_path, const std::string& what,
                     const std::string& target = {}) {
  return CliError(ExitCode::kLocalError, "InvalidConfig",
                  "The CLI config '" + source_path + "' is invalid: " + what, target);
}

// Reads an optional string member; a present non-string is an error.
CliResult<std::string> OptionalString(const Json& obj, const std::string& key,
                                      const std::string& source_path, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return ConfigError(source_path, where + key + " must be a string", key);
  return it->get<std::string>();
}

}  // namespace

std::string TrimWhitespace(const std::string& s) {
  const char* kSpace = " \t\r\n\f\v";
  size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string::npos) return {};
  size_t end = s.find_last_not_of(kSpace);
  return s.substr(begin, end - begin + 1);
}

std::string ConfigPath(const char* stratus_config_env, const char* home_env) {
  if (stratus_config_env != nullptr && *stratus_config_env != '\0') return stratus_config_env;
  const char* home = home_env != nullptr && *home_env != '\0' ? home_env : ".";
  return JoinPath(home, ".stratus/config.json");
}

CliResult<CliConfig> ParseCliConfig(const std::string& text, const std::string& source_path) {
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return ConfigError(source_path, "it is not valid JSON");
  if (!doc.is_object()) return ConfigError(source_path, "the top level must be an object");

  CliConfig config;
  config.source_path = source_path;
  CLI_ASSIGN_OR_RETURN(config.default_region, OptionalString(doc, "default", source_path, ""));

  auto regions = doc.find("regions");
  if (regions == doc.end() || !regions->is_object() || regions->empty())
    return ConfigError(source_path, "\"regions\" must be a non-empty object", "regions");
  for (auto& [name, entry] : regions->items()) {
    std::string where = "regions." + name + ".";
    if (!entry.is_object()) return ConfigError(source_path, where + " must be an object", name);
    RegionConfig region;
    region.name = name;
    CLI_ASSIGN_OR_RETURN(region.endpoint, OptionalString(entry, "endpoint", source_path, where));
    CLI_ASSIGN_OR_RETURN(region.token_file, OptionalString(entry, "tokenFile", source_path, where));
    CLI_ASSIGN_OR_RETURN(region.ca_file, OptionalString(entry, "caFile", source_path, where));
    CLI_ASSIGN_OR_RETURN(region.subscription,
                         OptionalString(entry, "subscription", source_path, where));
    CLI_ASSIGN_OR_RETURN(region.location, OptionalString(entry, "location", source_path, where));
    if (region.endpoint.empty())
      return ConfigError(source_path, where + "endpoint is missing", where + "endpoint");
    if (region.endpoint.find("://") == std::string::npos)
      region.endpoint = "http://" + region.endpoint;
    while (region.endpoint.size() > 1 && region.endpoint.back() == '/') region.endpoint.pop_back();
    if (region.location.empty()) region.location = name;
    config.regions.emplace(name, std::move(region));
  }
  if (!config.default_region.empty() && !config.regions.count(config.default_region))
    return ConfigError(
        source_path,
        "\"default\" names region '" + config.default_region + "', which is not in \"regions\"",
        "default");
  return config;
}

CliResult<CliConfig> LoadCliConfig(const std::string& path) {
  if (!PathExists(path))
    return CliError(ExitCode::kLocalError, "ConfigNotFound",
                    "No Stratus CLI config at '" + path +
                        "'. stratusd writes it on its first start; point STRATUS_CONFIG at it "
                        "if it lives elsewhere.",
                    path);
  auto text = ReadFile(path);
  if (!text.ok()) return LocalError(text.status());
  return ParseCliConfig(*text, path);
}

CliResult<RegionConfig> SelectRegion(const CliConfig& config, const std::string& region) {
  std::string name = region;
  if (name.empty()) name = config.default_region;
  if (name.empty()) {
    if (config.regions.size() == 1) return config.regions.begin()->second;
    return CliError(ExitCode::kLocalError, "InvalidConfig",
                    "The CLI config '" + config.source_path +
                        "' has several regions and no \"default\"; pass --region.",
                    "default");
  }
  auto it = config.regions.find(name);
  if (it != config.regions.end()) return it->second;
  std::string known;
  for (const auto& [n, r] : config.regions) known += (known.empty() ? "" : ", ") + n;
  return UsageError(
      "Unknown region '" + name + "' (known in " + config.source_path + ": " + known + ").",
      "--region");
}

CliResult<std::string> LoadToken(const RegionConfig& region, const char* env_token) {
  if (env_token != nullptr) {
    std::string token = TrimWhitespace(env_token);
    if (!token.empty()) return token;
  }
  if (region.token_file.empty())
    return CliError(ExitCode::kLocalError, "TokenNotFound",
                    "Region '" + region.name + "' has no tokenFile and STRATUS_TOKEN is not set.",
                    "tokenFile");
  auto text = ReadFile(region.token_file);
  if (!text.ok())
    return CliError(ExitCode::kLocalError, "TokenNotFound",
                    "Cannot read the token file '" + region.token_file + "' of region '" +
                        region.name + "' (set STRATUS_TOKEN, or run as a user who can read it).",
                    region.token_file);
  std::string token = TrimWhitespace(*text);
  if (token.empty())
    return CliError(ExitCode::kLocalError, "TokenNotFound",
                    "The token file '" + region.token_file + "' is empty.", region.token_file);
  return token;
}

}  // namespace stratus::cli
