// The CLI's configuration file, written by stratusd on its first start (format version 1):
//
//   {"default":"regionA",
//    "regions":{"regionA":{"endpoint":"http://127.0.0.1:8780",
//                          "tokenFile":"/var/lib/stratus/regionA/admin.token",
//                          "subscription":"<uuid>","location":"regionA"}}}
//
// Looked up at $STRATUS_CONFIG, else ~/.stratus/config.json. The bearer token is read from
// `tokenFile` (whitespace stripped) unless $STRATUS_TOKEN is set.
#pragma once

#include <map>
#include <string>

#include "cli/cli_error.h"

namespace stratus::cli {

struct RegionConfig {
  std::string name;          // key in "regions"
  std::string endpoint;      // "http://host:port" (a bare "host:port" gets "http://")
  std::string token_file;    // may be empty when $STRATUS_TOKEN is used
  std::string subscription;  // default subscription id
  std::string location;      // default location for new resources; the region name if absent
  std::string ca_file;       // "caFile": PEM file trusted for an https endpoint ("" = system CAs)
};

struct CliConfig {
  std::string source_path;     // where it was read from, for error messages
  std::string default_region;  // may be empty when there is exactly one region
  std::map<std::string, RegionConfig> regions;
};

// The config path: `stratus_config_env` if non-empty, else `<home_env>/.stratus/config.json`.
// Either argument may be null (unset variable).
std::string ConfigPath(const char* stratus_config_env, const char* home_env);

// Parses the config document. Errors (exit 1) name `source_path` and the bad field.
CliResult<CliConfig> ParseCliConfig(const std::string& text, const std::string& source_path);

// Reads and parses the file at `path`; a missing file is an error that says how to get one.
CliResult<CliConfig> LoadCliConfig(const std::string& path);

// The region called `region`, or the default one when `region` is empty. An unknown name is a
// usage error listing the known regions.
CliResult<RegionConfig> SelectRegion(const CliConfig& config, const std::string& region);

// The bearer token: `env_token` (from $STRATUS_TOKEN) when non-empty, else the trimmed contents
// of region.token_file.
CliResult<std::string> LoadToken(const RegionConfig& region, const char* env_token);

// `s` without leading/trailing ASCII whitespace.
std::string TrimWhitespace(const std::string& s);

}  // namespace stratus::cli
