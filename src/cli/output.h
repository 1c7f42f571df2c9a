// Output of the `stratus` CLI: `-o json` prints the API's JSON pretty-printed; `-o table`
// (default) prints an az-like table — a header row, a dashed rule and aligned columns chosen per
// resource type. A single resource is a one-row table; an empty list prints nothing.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "cli/cli_error.h"
#include "core/json.h"

namespace stratus::cli {

enum class OutputFormat { kTable, kJson };

// "table" | "json".
CliResult<OutputFormat> ParseOutputFormat(const std::string& name);

struct Column {
  std::string header;
  std::function<std::string(const Json& row)> value;
  // Drop the column when no row has a value (e.g. PowerState without an instance view).
  bool hide_when_empty = false;
};
using TableSpec = std::vector<Column>;

// A column showing the value at a dotted path ("properties.diskSizeGB").
Column FieldColumn(std::string header, std::string dotted_path, bool hide_when_empty = false);

// A JSON value as a table cell: strings verbatim, numbers, True/False, "" for null/absent,
// compact JSON for arrays and objects.
std::string FormatCell(const Json* value);

// The rendered table, one '\n'-terminated line per row, no trailing blanks. Empty for no rows.
std::string RenderTable(const TableSpec& spec, const std::vector<Json>& rows);

// The JSON text printed for -o json (2-space indent, invalid UTF-8 replaced).
std::string RenderJson(const Json& doc);

// Prints one resource / a list in `format`.
void PrintOne(std::ostream& out, OutputFormat format, const TableSpec& spec, const Json& item);
void PrintMany(std::ostream& out, OutputFormat format, const TableSpec& spec,
               const std::vector<Json>& items);

// Pieces of resource ids: the last segment ("web1") and the resource group ("" if none).
std::string NameFromId(const std::string& id);
std::string ResourceGroupFromId(const std::string& id);

// A VM's power state ("running") from `properties.instanceView` (or a bare instance view);
// "" when unknown.
std::string VmPowerState(const Json& vm_or_instance_view);

// Table layouts per resource type.
const TableSpec& GroupTable();             // Name, Location, ProvisioningState
const TableSpec& VmTable();                // Name, ResourceGroup, Location, Size, PowerState, ...
const TableSpec& InstanceViewTable();      // PowerState, ProvisioningState, BootTime, Agent, Disks
const TableSpec& DiskTable();              // Name, ResourceGroup, SizeGb, Sku, State, ManagedBy
const TableSpec& SnapshotTable();          // Name, ResourceGroup, Location, SizeGb, Source, ...
const TableSpec& ImageTable();             // Name, ResourceGroup, Location, OsType, SizeBytes, ...
const TableSpec& VmSizeTable();            // Name, Cores, MemoryMB, MaxDataDisks, IOPS, MBps
const TableSpec& ActivityLogTable();       // Time, Caller, Operation, Status, Resource
const TableSpec& OperationTable();         // Name, Operation, Status, Percent, Start, End, Resource
const TableSpec& PendingOperationTable();  // OperationId, Url (printed by --no-wait)

}  // namespace stratus::cli
