#include "cli/output.h"

#include <gtest/gtest.h>

#include <sstream>

namespace stratus::cli {
namespace {

const char* kVmId =
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg1/providers/"
    "Stratus.Compute/virtualMachines/web1";

Json Vm(const std::string& name, const std::string& size, const Json& instance_view = nullptr) {
  Json vm = {{"id", std::string(kVmId).substr(0, std::string(kVmId).rfind('/') + 1) + name},
             {"name", name},
             {"location", "regionA"},
             {"properties",
              {{"hardwareProfile", {{"vmSize", size}}}, {"provisioningState", "Succeeded"}}}};
  if (!instance_view.is_null()) vm["properties"]["instanceView"] = instance_view;
  return vm;
}

TEST(RenderTableTest, AlignsColumnsUnderHeaderAndRule) {
  TableSpec spec = {FieldColumn("Name", "name"), FieldColumn("Size", "size")};
  std::string table =
      RenderTable(spec, {{{"name", "a"}, {"size", 10}}, {{"name", "longer-name"}, {"size", 2}}});
  EXPECT_EQ(table,
            "Name         Size\n"
            "-----------  ----\n"
            "a            10\n"
            "longer-name  2\n");
}

TEST(RenderTableTest, EmptyListPrintsNothing) { EXPECT_EQ(RenderTable(GroupTable(), {}), ""); }

TEST(RenderTableTest, HidesOptionalColumnWhenNoRowHasIt) {
  std::string without = RenderTable(VmTable(), {Vm("web1", "Standard_S1")});
  EXPECT_EQ(without,
            "Name  ResourceGroup  Location  Size         ProvisioningState\n"
            "----  -------------  --------  -----------  -----------------\n"
            "web1  rg1            regionA   Standard_S1  Succeeded\n");
  std::string with = RenderTable(
      VmTable(), {Vm("web1", "Standard_S1", {{"powerState", "running"}}), Vm("db", "Standard_S2")});
  EXPECT_EQ(with,
            "Name  ResourceGroup  Location  Size         PowerState  ProvisioningState\n"
            "----  -------------  --------  -----------  ----------  -----------------\n"
            "web1  rg1            regionA   Standard_S1  running     Succeeded\n"
            "db    rg1            regionA   Standard_S2              Succeeded\n");
}

TEST(RenderTableTest, DiskShowsManagedByVmName) {
  Json disk = {
      {"id", "/subscriptions/s/resourceGroups/rg1/providers/Stratus.Storage/disks/d1"},
      {"name", "d1"},
      {"sku", {{"name", "Premium_LRS"}}},
      {"managedBy", kVmId},
      {"properties", {{"diskSizeGB", 4}, {"diskState", "Attached"}}}};
  EXPECT_EQ(RenderTable(DiskTable(), {disk}),
            "Name  ResourceGroup  SizeGb  Sku          State     ManagedBy\n"
            "----  -------------  ------  -----------  --------  ---------\n"
            "d1    rg1            4       Premium_LRS  Attached  web1\n");
}

TEST(RenderTableTest, VmSizesAndActivityLog) {
  Json size = {{"name", "Standard_S2"}, {"numberOfCores", 2},  {"memoryInMB", 2048},
               {"maxDataDiskCount", 4}, {"maxDiskIops", 5000}, {"maxDiskMBps", 200}};
  EXPECT_EQ(RenderTable(VmSizeTable(), {size}),
            "Name         Cores  MemoryMB  MaxDataDisks  IOPS  MBps\n"
            "-----------  -----  --------  ------------  ----  ----\n"
            "Standard_S2  2      2048      4             5000  200\n");
  Json event = {{"eventTimestamp", "2026-11-22T10:00:00Z"},
                {"caller", "admin"},
                {"operationName", "Stratus.Compute/virtualMachines/write"},
                {"status", "Succeeded"},
                {"resourceId", kVmId}};
  EXPECT_EQ(
      RenderTable(ActivityLogTable(), {event}),
      "Time                  Caller  Operation                              Status     Resource\n"
      "--------------------  ------  -------------------------------------  ---------  "
      "--------------------\n"
      "2026-11-22T10:00:00Z  admin   Stratus.Compute/virtualMachines/write  Succeeded  "
      "virtualMachines/web1\n");
}

TEST(FormatCellTest, Scalars) {
  Json j = {{"s", "x"}, {"n", 3}, {"b", true}, {"z", nullptr}, {"a", {1, 2}}};
  EXPECT_EQ(FormatCell(JsonPath(j, "s")), "x");
  EXPECT_EQ(FormatCell(JsonPath(j, "n")), "3");
  EXPECT_EQ(FormatCell(JsonPath(j, "b")), "True");
  EXPECT_EQ(FormatCell(JsonPath(j, "z")), "");
  EXPECT_EQ(FormatCell(JsonPath(j, "missing")), "");
  EXPECT_EQ(FormatCell(JsonPath(j, "a")), "[1,2]");
}

TEST(IdPartsTest, NameAndGroup) {
  EXPECT_EQ(NameFromId(kVmId), "web1");
  EXPECT_EQ(ResourceGroupFromId(kVmId), "rg1");
  EXPECT_EQ(ResourceGroupFromId("/subscriptions/s/RESOURCEGROUPS/Rg2/providers/x/y/z"), "Rg2");
  EXPECT_EQ(ResourceGroupFromId("/subscriptions/s/providers/Stratus.Compute/platformImages/tiny"),
            "");
}

TEST(VmPowerStateTest, FromPowerStateOrStatuses) {
  EXPECT_EQ(VmPowerState(Vm("a", "s", {{"powerState", "stopped"}})), "stopped");
  EXPECT_EQ(VmPowerState(Json{{"statuses",
                               {{{"code", "ProvisioningState/succeeded"}},
                                {{"code", "PowerState/deallocated"}}}}}),
            "deallocated");
  EXPECT_EQ(VmPowerState(Vm("a", "s")), "");
}

TEST(PrintTest, JsonIsPrettyPrintedApiJson) {
  std::ostringstream out;
  PrintOne(out, OutputFormat::kJson, GroupTable(), Json{{"name", "rg1"}});
  EXPECT_EQ(out.str(), "{\n  \"name\": \"rg1\"\n}\n");
  std::ostringstream list;
  PrintMany(list, OutputFormat::kJson, GroupTable(), {});
  EXPECT_EQ(list.str(), "[]\n");
}

TEST(PrintTest, SingleResourceIsOneRowTable) {
  std::ostringstream out;
  PrintOne(out, OutputFormat::kTable, GroupTable(),
           Json{{"name", "rg1"},
                {"location", "regionA"},
                {"properties", {{"provisioningState", "Succeeded"}}}});
  EXPECT_EQ(out.str(),
            "Name  Location  ProvisioningState\n"
            "----  --------  -----------------\n"
            "rg1   regionA   Succeeded\n");
}

TEST(OutputFormatTest, Parse) {
  EXPECT_EQ(*ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(*ParseOutputFormat("TABLE"), OutputFormat::kTable);
  auto bad = ParseOutputFormat("yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().exit_code(), ExitCode::kUsage);
}

}  // namespace
}  // namespace stratus::cli
