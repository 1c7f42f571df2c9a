#include "cli/output.h"

#include <algorithm>

#include "core/resource_id.h"

namespace stratus::cli {
namespace {

std::string Text(const Json& row, const std::string& dotted) {
  return FormatCell(JsonPath(row, dotted));
}

// The segment after `key` in an id ("/.../resourceGroups/rg1/..." -> "rg1"), case-insensitive.
std::string SegmentAfter(const std::string& id, std::string_view key) {
  size_t pos = 0;
  std::vector<std::string> parts;
  while (pos <= id.size()) {
    size_t end = id.find('/', pos);
    if (end == std::string::npos) end = id.size();
    if (end > pos) parts.push_back(id.substr(pos, end - pos));
    pos = end + 1;
  }
  for (size_t i = 0; i + 1 < parts.size(); ++i)
    if (EqualsIgnoreCase(parts[i], key)) return parts[i + 1];
  return {};
}

// "virtualMachines/web1": the last type/name pair of an id, short enough for a table.
std::string ShortResource(const std::string& id) {
  size_t last = id.find_last_of('/');
  if (last == std::string::npos || last == 0) return id;
  size_t prev = id.find_last_of('/', last - 1);
  return prev == std::string::npos ? id : id.substr(prev + 1);
}

std::string IdTextColumn(const Json& row, const char* dotted,
                         std::string (*fn)(const std::string&)) {
  const Json* v = JsonPath(row, dotted);
  if (v == nullptr || !v->is_string()) return {};
  return fn(v->get<std::string>());
}

std::string ProvisioningStateFromStatuses(const Json& view) {
  const Json* statuses = JsonPath(view, "statuses");
  if (statuses == nullptr || !statuses->is_array()) return {};
  for (const Json& s : *statuses) {
    std::string code = FormatCell(JsonPath(s, "code"));
    if (code.rfind("ProvisioningState/", 0) == 0) return code.substr(18);
  }
  return {};
}

}  // namespace

CliResult<OutputFormat> ParseOutputFormat(const std::string& name) {
  std::string lower = ToLower(name);
  if (lower == "table") return OutputFormat::kTable;
  if (lower == "json") return OutputFormat::kJson;
  return UsageError("Unknown output format '" + name + "' (use table or json).", "--output");
}

Column FieldColumn(std::string header, std::string dotted_path, bool hide_when_empty) {
  return Column{std::move(header),
                [path = std::move(dotted_path)](const Json& row) { return Text(row, path); },
                hide_when_empty};
}

std::string FormatCell(const Json* value) {
  if (value == nullptr || value->is_null()) return {};
  if (value->is_string()) return value->get<std::string>();
  if (value->is_boolean()) return value->get<bool>() ? "True" : "False";
  return value->dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string RenderTable(const TableSpec& spec, const std::vector<Json>& rows) {
  if (rows.empty()) return {};
  std::vector<const Column*> columns;
  std::vector<std::vector<std::string>> cells(rows.size());
  for (const Column& column : spec) {
    std::vector<std::string> values;
    bool any = false;
    for (const Json& row : rows) {
      values.push_back(column.value(row));
      any = any || !values.back().empty();
    }
    if (column.hide_when_empty && !any) continue;
    columns.push_back(&column);
    for (size_t r = 0; r < rows.size(); ++r) cells[r].push_back(std::move(values[r]));
  }
  std::vector<size_t> widths;
  for (size_t c = 0; c < columns.size(); ++c) {
    size_t w = columns[c]->header.size();
    for (const auto& row : cells) w = std::max(w, row[c].size());
    widths.push_back(w);
  }
  auto line = [&](const std::vector<std::string>& values) {
    std::string out;
    for (size_t c = 0; c < values.size(); ++c) {
      if (c > 0) out += "  ";
      out += values[c];
      if (c + 1 < values.size()) out.append(widths[c] - values[c].size(), ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::vector<std::string> headers, rules;
  for (size_t c = 0; c < columns.size(); ++c) {
    headers.push_back(columns[c]->header);
    rules.push_back(std::string(widths[c], '-'));
  }
  std::string out = line(headers) + line(rules);
  for (const auto& row : cells) out += line(row);
  return out;
}

std::string RenderJson(const Json& doc) {
  return doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

void PrintOne(std::ostream& out, OutputFormat format, const TableSpec& spec, const Json& item) {
  if (format == OutputFormat::kJson) {
    out << RenderJson(item);
  } else {
    out << RenderTable(spec, {item});
  }
  out.flush();
}

void PrintMany(std::ostream& out, OutputFormat format, const TableSpec& spec,
               const std::vector<Json>& items) {
  if (format == OutputFormat::kJson) {
    out << RenderJson(Json(items));
  } else {
    out << RenderTable(spec, items);
  }
  out.flush();
}

std::string NameFromId(const std::string& id) {
  std::string trimmed = id;
  while (!trimmed.empty() && trimmed.back() == '/') trimmed.pop_back();
  size_t slash = trimmed.find_last_of('/');
  return slash == std::string::npos ? trimmed : trimmed.substr(slash + 1);
}

std::string ResourceGroupFromId(const std::string& id) {
  return SegmentAfter(id, "resourceGroups");
}

std::string VmPowerState(const Json& vm_or_view) {
  const Json* view = JsonPath(vm_or_view, "properties.instanceView");
  if (view == nullptr) view = &vm_or_view;
  const Json* state = JsonPath(*view, "powerState");
  if (state != nullptr && state->is_string()) return state->get<std::string>();
  const Json* statuses = JsonPath(*view, "statuses");
  if (statuses == nullptr || !statuses->is_array()) return {};
  for (const Json& s : *statuses) {
    std::string code = FormatCell(JsonPath(s, "code"));
    if (code.rfind("PowerState/", 0) == 0) return code.substr(11);
  }
  return {};
}

const TableSpec& GroupTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),
      FieldColumn("Location", "location"),
      FieldColumn("ProvisioningState", "properties.provisioningState"),
  };
  return kSpec;
}

const TableSpec& VmTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),
      {"ResourceGroup", [](const Json& r) { return IdTextColumn(r, "id", ResourceGroupFromId); }},
      FieldColumn("Location", "location"),
      FieldColumn("Size", "properties.hardwareProfile.vmSize"),
      {"PowerState", [](const Json& r) { return VmPowerState(r); }, /*hide_when_empty=*/true},
      FieldColumn("ProvisioningState", "properties.provisioningState"),
  };
  return kSpec;
}

const TableSpec& InstanceViewTable() {
  static const TableSpec kSpec = {
      {"PowerState", [](const Json& r) { return VmPowerState(r); }},
      {"ProvisioningState", [](const Json& r) { return ProvisioningStateFromStatuses(r); }},
      FieldColumn("BootTime", "bootTime"),
      FieldColumn("Agent", "agent.status"),
      {"Disks",
       [](const Json& r) {
         const Json* disks = JsonPath(r, "disks");
         if (disks == nullptr || !disks->is_array()) return std::string();
         std::string out;
         for (const Json& d : *disks) {
           if (!out.empty()) out += ",";
           out += FormatCell(JsonPath(d, "name"));
           const Json* lun = JsonPath(d, "lun");
           if (lun != nullptr && !lun->is_null()) out += "@" + FormatCell(lun);
         }
         return out;
       }},
  };
  return kSpec;
}

const TableSpec& DiskTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),
      {"ResourceGroup", [](const Json& r) { return IdTextColumn(r, "id", ResourceGroupFromId); }},
      FieldColumn("SizeGb", "properties.diskSizeGB"),
      FieldColumn("Sku", "sku.name"),
      FieldColumn("State", "properties.diskState"),
      {"ManagedBy",
       [](const Json& r) { return IdTextColumn(r, "managedBy", NameFromId); }},
  };
  return kSpec;
}

const TableSpec& SnapshotTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),
      {"ResourceGroup", [](const Json& r) { return IdTextColumn(r, "id", ResourceGroupFromId); }},
      FieldColumn("Location", "location"),
      FieldColumn("SizeGb", "properties.diskSizeGB"),
      {"Source",
       [](const Json& r) {
         return IdTextColumn(r, "properties.creationData.sourceResourceId", NameFromId);
       }},
      FieldColumn("ProvisioningState", "properties.provisioningState"),
  };
  return kSpec;
}

const TableSpec& ImageTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),
      {"ResourceGroup", [](const Json& r) { return IdTextColumn(r, "id", ResourceGroupFromId); }},
      FieldColumn("Location", "location"),
      FieldColumn("OsType", "properties.osType"),
      FieldColumn("SizeBytes", "properties.sizeBytes"),
      FieldColumn("ProvisioningState", "properties.provisioningState"),
  };
  return kSpec;
}

const TableSpec& VmSizeTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),           FieldColumn("Cores", "numberOfCores"),
      FieldColumn("MemoryMB", "memoryInMB"), FieldColumn("MaxDataDisks", "maxDataDiskCount"),
      FieldColumn("IOPS", "maxDiskIops"),    FieldColumn("MBps", "maxDiskMBps"),
  };
  return kSpec;
}

const TableSpec& ActivityLogTable() {
  static const TableSpec kSpec = {
      FieldColumn("Time", "eventTimestamp"),
      FieldColumn("Caller", "caller"),
      FieldColumn("Operation", "operationName"),
      FieldColumn("Status", "status"),
      {"Resource", [](const Json& r) { return IdTextColumn(r, "resourceId", ShortResource); }},
  };
  return kSpec;
}

const TableSpec& OperationTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),
      FieldColumn("Operation", "operation"),
      FieldColumn("Status", "status"),
      FieldColumn("Percent", "percentComplete"),
      FieldColumn("StartTime", "startTime"),
      FieldColumn("EndTime", "endTime"),
      {"Resource", [](const Json& r) { return IdTextColumn(r, "resourceId", ShortResource); }},
  };
  return kSpec;
}

const TableSpec& PendingOperationTable() {
  static const TableSpec kSpec = {
      FieldColumn("OperationId", "operationId"),
      FieldColumn("Url", "url"),
  };
  return kSpec;
}

}  // namespace stratus::cli
