#include "compute/domain_xml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stratus::compute {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

DomainSpec BaseSpec() {
  DomainSpec s;
  s.name = "stratus-3f2a";
  s.uuid = "3f2a0c3e-1111-4222-8333-944455556666";
  s.vcpus = 2;
  s.memory_mib = 512;
  DiskAttachment os;
  os.target_dev = "vda";
  os.path = "/var/lib/stratus/disks/os.qcow2";
  os.serial = "disk-os";
  s.disks.push_back(os);
  s.console_log_path = "/var/log/stratus/console/stratus-3f2a.log";
  s.metadata_json = R"({"resourceId":"/subscriptions/s/vm1"})";
  return s;
}

std::string Render(const DomainSpec& s, const DomainXmlOptions& o = {}) {
  auto r = DomainXml(s, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::string();
}

TEST(DomainXmlTest, DiskBootHasBootDevAndNoKernel) {
  std::string x = Render(BaseSpec());
  EXPECT_THAT(x, HasSubstr("<domain type='qemu'>"));
  EXPECT_THAT(x, HasSubstr("<name>stratus-3f2a</name>"));
  EXPECT_THAT(x, HasSubstr("<uuid>3f2a0c3e-1111-4222-8333-944455556666</uuid>"));
  EXPECT_THAT(x, HasSubstr("<type arch='x86_64' machine='pc'>hvm</type>"));
  EXPECT_THAT(x, HasSubstr("<boot dev='hd'/>"));
  EXPECT_THAT(x, Not(HasSubstr("<kernel>")));
  EXPECT_THAT(x, HasSubstr("<vcpu placement='static'>2</vcpu>"));
  EXPECT_THAT(x, HasSubstr("<memory unit='MiB'>512</memory>"));
  EXPECT_THAT(x, HasSubstr("<acpi/>"));
  EXPECT_THAT(x, HasSubstr("<on_poweroff>destroy</on_poweroff>"));
  EXPECT_THAT(x, HasSubstr("<on_reboot>restart</on_reboot>"));
  EXPECT_THAT(x, HasSubstr("<on_crash>destroy</on_crash>"));
  EXPECT_THAT(x, HasSubstr("<memballoon model='none'/>"));
  EXPECT_THAT(x, HasSubstr("<controller type='usb' model='none'/>"));
  EXPECT_THAT(x, Not(HasSubstr("<graphics")));
  EXPECT_THAT(x, HasSubstr("<target type='virtio' name='org.qemu.guest_agent.0'/>"));
  EXPECT_THAT(x, HasSubstr("<log file='/var/log/stratus/console/stratus-3f2a.log' "
                           "append='on'/>"));
  EXPECT_THAT(x, HasSubstr("<console type='pty'>"));
  EXPECT_THAT(x, Not(HasSubstr("<cpu mode='host-passthrough'/>")));
}

TEST(DomainXmlTest, KernelBoot) {
  DomainSpec s = BaseSpec();
  s.kernel = "/images/vmlinuz";
  s.initrd = "/images/initrd.img";
  s.cmdline = "console=ttyS0 root=/dev/vda";
  std::string x = Render(s);
  EXPECT_THAT(x, HasSubstr("<kernel>/images/vmlinuz</kernel>"));
  EXPECT_THAT(x, HasSubstr("<initrd>/images/initrd.img</initrd>"));
  EXPECT_THAT(x, HasSubstr("<cmdline>console=ttyS0 root=/dev/vda</cmdline>"));
  EXPECT_THAT(x, Not(HasSubstr("<boot dev=")));
}

TEST(DomainXmlTest, KvmTypeAndMachineFromOptions) {
  DomainXmlOptions o;
  o.domain_type = "kvm";
  o.machine = "q35";
  std::string x = Render(BaseSpec(), o);
  EXPECT_THAT(x, HasSubstr("<domain type='kvm'>"));
  EXPECT_THAT(x, HasSubstr("machine='q35'"));
  EXPECT_THAT(x, HasSubstr("<cpu mode='host-passthrough'/>"));
}

TEST(DomainXmlTest, DiskDriverAndIoTune) {
  DomainSpec s = BaseSpec();
  std::string x = Render(s);
  EXPECT_THAT(x, HasSubstr("<driver name='qemu' type='qcow2' cache='none' io='native' "
                           "discard='unmap'"));
  EXPECT_THAT(x, HasSubstr("<target dev='vda' bus='virtio'/>"));
  EXPECT_THAT(x, HasSubstr("<serial>disk-os</serial>"));
  EXPECT_THAT(x, Not(HasSubstr("<iotune>")));

  s.disks[0].iotune.total_iops_sec = 500;
  x = Render(s);
  EXPECT_THAT(x, HasSubstr("<total_iops_sec>500</total_iops_sec>"));
  EXPECT_THAT(x, Not(HasSubstr("total_bytes_sec")));

  s.disks[0].iotune.total_bytes_sec = 104857600;
  s.disks[0].format = "raw";
  s.disks[0].read_only = true;
  x = Render(s);
  EXPECT_THAT(x, HasSubstr("<total_bytes_sec>104857600</total_bytes_sec>"));
  EXPECT_THAT(x, HasSubstr("type='raw'"));
  EXPECT_THAT(x, HasSubstr("<readonly/>"));
}

TEST(DomainXmlTest, EscapesEveryString) {
  DomainSpec s = BaseSpec();
  s.name = "vm<&>'\"";
  s.kernel = "/k&k";
  s.cmdline = "a='b' c=\"d\" <e>";
  s.disks[0].path = "/d/x'y&z.qcow2";
  s.disks[0].serial = "s<1>";
  s.console_log_path = "/log/'q'.log";
  s.metadata_json = R"({"a":"<b>&'c'"})";
  std::string x = Render(s);
  EXPECT_THAT(x, HasSubstr("<name>vm&lt;&amp;&gt;&apos;&quot;</name>"));
  EXPECT_THAT(x, HasSubstr("<kernel>/k&amp;k</kernel>"));
  EXPECT_THAT(x, HasSubstr("<cmdline>a=&apos;b&apos; c=&quot;d&quot; &lt;e&gt;</cmdline>"));
  EXPECT_THAT(x, HasSubstr("<source file='/d/x&apos;y&amp;z.qcow2'/>"));
  EXPECT_THAT(x, HasSubstr("<serial>s&lt;1&gt;</serial>"));
  EXPECT_THAT(x, HasSubstr("<log file='/log/&apos;q&apos;.log'"));
  EXPECT_THAT(x, Not(HasSubstr("<b>")));

  // And the reader undoes it.
  auto parsed = ParseDomainXml(x);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->name, s.name);
  EXPECT_EQ(parsed->metadata_json, s.metadata_json);
  ASSERT_EQ(parsed->disks.size(), 1u);
  EXPECT_EQ(parsed->disks[0].path, s.disks[0].path);
  EXPECT_EQ(parsed->disks[0].serial, s.disks[0].serial);
}

TEST(DomainXmlTest, MetadataInNamespacedElement) {
  std::string x = Render(BaseSpec());
  EXPECT_THAT(x, HasSubstr("<metadata>"));
  EXPECT_THAT(x, HasSubstr("<stratus:vm xmlns:stratus='https://stratus.dev/xmlns/vm/1'>"
                           "{&quot;resourceId&quot;:&quot;/subscriptions/s/vm1&quot;}"
                           "</stratus:vm>"));
  DomainSpec s = BaseSpec();
  s.metadata_json.clear();
  EXPECT_THAT(Render(s), Not(HasSubstr("<metadata>")));
}

TEST(DomainXmlTest, RejectsInvalidSpecs) {
  DomainSpec s = BaseSpec();
  s.name = "";
  EXPECT_EQ(DomainXml(s, {}).status().code(), StatusCode::kInvalidArgument);
  s = BaseSpec();
  s.disks[0].target_dev = "sda";
  EXPECT_EQ(DomainXml(s, {}).status().code(), StatusCode::kInvalidArgument);
  s = BaseSpec();
  s.disks[0].format = "vmdk";
  EXPECT_EQ(DomainXml(s, {}).status().code(), StatusCode::kInvalidArgument);
  s = BaseSpec();
  s.disks[0].path = "relative.qcow2";
  EXPECT_EQ(DomainXml(s, {}).status().code(), StatusCode::kInvalidArgument);
  s = BaseSpec();
  s.disks.push_back(s.disks[0]);
  EXPECT_EQ(DomainXml(s, {}).status().code(), StatusCode::kInvalidArgument);
  s = BaseSpec();
  s.disks[0].serial = std::string(21, 'x');
  EXPECT_EQ(DomainXml(s, {}).status().code(), StatusCode::kInvalidArgument);
  s = BaseSpec();
  s.cmdline = "console=ttyS0";  // without kernel
  EXPECT_EQ(DomainXml(s, {}).status().code(), StatusCode::kInvalidArgument);
  s = BaseSpec();
  s.cmdline = std::string("a\x01");
  s.kernel = "/k";
  EXPECT_EQ(DomainXml(s, {}).status().code(), StatusCode::kInvalidArgument);
  s = BaseSpec();
  s.vcpus = 0;
  EXPECT_EQ(DomainXml(s, {}).status().code(), StatusCode::kInvalidArgument);
  DomainXmlOptions o;
  o.domain_type = "xen";
  EXPECT_EQ(DomainXml(BaseSpec(), o).status().code(), StatusCode::kInvalidArgument);
}

TEST(DomainXmlTest, DiskXmlForHotplug) {
  DiskAttachment d;
  d.target_dev = "vdb";
  d.path = "/disks/data.qcow2";
  d.iotune.total_bytes_sec = 1000;
  auto x = DiskXml(d, {});
  ASSERT_TRUE(x.ok());
  EXPECT_THAT(*x, HasSubstr("<disk type='file' device='disk'>"));
  EXPECT_THAT(*x, HasSubstr("<target dev='vdb' bus='virtio'/>"));
  EXPECT_THAT(*x, HasSubstr("<total_bytes_sec>1000</total_bytes_sec>"));
  EXPECT_THAT(DiskTargetXml("vdb"), HasSubstr("<target dev='vdb'"));
}

TEST(DomainXmlTest, BackupXmlListsEveryDisk) {
  std::string x =
      BackupXml({"vda", "vdb", "vdc"}, {{"vda", "/snap/a.qcow2"}, {"vdc", "/snap/c&.qcow2"}});
  EXPECT_THAT(x, HasSubstr("<disk name='vda' backup='yes' type='file'>\n"
                           "      <target file='/snap/a.qcow2'/>\n"
                           "      <driver type='qcow2'/>"));
  EXPECT_THAT(x, HasSubstr("<disk name='vdb' backup='no'/>"));
  EXPECT_THAT(x, HasSubstr("<target file='/snap/c&amp;.qcow2'/>"));
  EXPECT_THAT(x, Not(HasSubstr("checkpoint")));
}

TEST(DomainXmlTest, PullBackupXmlMixesIncrementalAndFullDisks) {
  std::string x = PullBackupXml({"vda", "vdb", "vdc"},
                                {{"vda", "/s/a.qcow2", false}, {"vdc", "/s/c&.qcow2", true}},
                                "ck-1", "/run/b/nbd.sock");
  EXPECT_THAT(x, HasSubstr("<domainbackup mode='pull'>"));
  EXPECT_THAT(x, HasSubstr("<incremental>ck-1</incremental>"));
  EXPECT_THAT(x, HasSubstr("<server transport='unix' socket='/run/b/nbd.sock'/>"));
  EXPECT_THAT(x, HasSubstr("<disk name='vda' backup='yes' type='file'>\n"
                           "      <scratch file='/s/a.qcow2'/>"));
  EXPECT_THAT(x, HasSubstr("<disk name='vdb' backup='no'/>"));
  EXPECT_THAT(x, HasSubstr("<disk name='vdc' backup='yes' type='file' backupmode='full'>\n"
                           "      <scratch file='/s/c&amp;.qcow2'/>"));

  std::string full = PullBackupXml({"vda"}, {{"vda", "/s/a.qcow2", true}}, "", "/r/s");
  EXPECT_THAT(full, Not(HasSubstr("incremental")));
  EXPECT_THAT(full, Not(HasSubstr("backupmode")));
}

TEST(DomainXmlTest, CheckpointXmlListsEveryDisk) {
  std::string x = CheckpointXml("ck-2", {"vda", "vdb", "vdc"}, {"vda", "vdc"});
  EXPECT_THAT(x, HasSubstr("<name>ck-2</name>"));
  EXPECT_THAT(x, HasSubstr("<disk name='vda' checkpoint='bitmap'/>"));
  EXPECT_THAT(x, HasSubstr("<disk name='vdb' checkpoint='no'/>"));
  EXPECT_THAT(x, HasSubstr("<disk name='vdc' checkpoint='bitmap'/>"));
}

// As virDomainBackupGetXMLDesc and virDomainCheckpointGetXMLDesc (libvirt 9.0) return them.
TEST(DomainXmlTest, ParsesBackupAndCheckpointDescriptions) {
  auto b = ParseBackupXml(R"(<domainbackup mode='pull'>
  <incremental>ck1</incremental>
  <server transport='unix' socket='/var/tmp/x/nbd.sock'/>
  <disks>
    <disk name='vda' backup='yes' type='file' backupmode='incremental' incremental='ck1' exportname='vda' exportbitmap='backup-vda' index='7'>
      <driver type='qcow2'/>
      <scratch file='/var/tmp/x/vda.qcow2'/>
    </disk>
    <disk name='vdb' backup='no'/>
    <disk name='vdc' backup='yes' type='file' backupmode='full' exportname='vdc' index='9'>
      <driver type='qcow2'/>
      <scratch file='/var/tmp/x/vdc.qcow2'/>
    </disk>
  </disks>
</domainbackup>
)");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->mode, "pull");
  EXPECT_EQ(b->incremental, "ck1");
  EXPECT_EQ(b->socket_path, "/var/tmp/x/nbd.sock");
  ASSERT_EQ(b->disks.size(), 3u);
  EXPECT_TRUE(b->disks[0].backup);
  EXPECT_EQ(b->disks[0].mode, "incremental");
  EXPECT_EQ(b->disks[0].export_name, "vda");
  EXPECT_EQ(b->disks[0].export_bitmap, "backup-vda");
  EXPECT_EQ(b->disks[0].scratch_path, "/var/tmp/x/vda.qcow2");
  EXPECT_FALSE(b->disks[1].backup);
  EXPECT_EQ(b->disks[2].mode, "full");
  EXPECT_EQ(b->disks[2].export_bitmap, "");
  EXPECT_FALSE(ParseBackupXml("<domain/>").ok());

  auto c = ParseCheckpointXml(R"(<domaincheckpoint>
  <name>ck3</name>
  <parent>
    <name>ck1</name>
  </parent>
  <creationTime>1796038762</creationTime>
  <disks>
    <disk name='vda' checkpoint='bitmap' bitmap='ck3'/>
    <disk name='vdb' checkpoint='no'/>
    <disk name='vdc' checkpoint='bitmap'/>
  </disks>
</domaincheckpoint>
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name, "ck3");
  EXPECT_EQ(c->parent, "ck1");
  EXPECT_EQ(c->creation_time, 1796038762);
  ASSERT_EQ(c->disks.size(), 2u);
  EXPECT_EQ(c->disks[0].target_dev, "vda");
  EXPECT_EQ(c->disks[0].bitmap, "ck3");
  EXPECT_EQ(c->disks[1].target_dev, "vdc");
  EXPECT_EQ(c->disks[1].bitmap, "ck3") << "libvirt's default bitmap name is the checkpoint's";
  EXPECT_FALSE(ParseCheckpointXml("<domainbackup/>").ok());
}

// The shape libvirt writes back (double quotes, extra elements, its own namespace layout).
TEST(DomainXmlTest, ParsesLibvirtOutput) {
  const std::string xml = R"(<domain type="qemu" id="3">
  <name>stratus-x</name>
  <uuid>0f1e2d3c-0000-4000-8000-000000000001</uuid>
  <metadata>
    <other:thing xmlns:other="https://example.com/x">ignored</other:thing>
    <stratus:vm xmlns:stratus="https://stratus.dev/xmlns/vm/1">{"id":"a&amp;b","n":1}</stratus:vm>
  </metadata>
  <!-- a comment -->
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2" cache="none" io="native" discard="unmap"/>
      <source file="/d/os.qcow2" index="2"/>
      <backingStore/>
      <target dev="vda" bus="virtio"/>
      <iotune>
        <total_bytes_sec>2048</total_bytes_sec>
        <total_iops_sec>77</total_iops_sec>
      </iotune>
      <serial>os</serial>
      <alias name="virtio-disk0"/>
    </disk>
    <disk type="file" device="disk">
      <driver name="qemu" type="raw"/>
      <source file="/d/data.raw"/>
      <target dev="vdb" bus="virtio"/>
      <readonly/>
    </disk>
  </devices>
  <seclabel type="dynamic" model="apparmor" relabel="yes">
    <label>libvirt-0f1e</label>
  </seclabel>
  <seclabel type="dynamic" model="dac" relabel="yes">
    <label>+64055:+64055</label>
    <imagelabel>+64055:+64055</imagelabel>
  </seclabel>
</domain>
)";
  auto p = ParseDomainXml(xml);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->type, "qemu");
  EXPECT_EQ(p->name, "stratus-x");
  EXPECT_EQ(p->uuid, "0f1e2d3c-0000-4000-8000-000000000001");
  EXPECT_EQ(p->metadata_json, R"({"id":"a&b","n":1})");
  EXPECT_EQ(p->dac_label, "+64055:+64055");
  ASSERT_EQ(p->disks.size(), 2u);
  EXPECT_EQ(p->disks[0].target_dev, "vda");
  EXPECT_EQ(p->disks[0].path, "/d/os.qcow2");
  EXPECT_EQ(p->disks[0].format, "qcow2");
  EXPECT_EQ(p->disks[0].serial, "os");
  EXPECT_EQ(p->disks[0].iotune, (IoTune{77, 2048}));
  EXPECT_FALSE(p->disks[0].read_only);
  EXPECT_EQ(p->disks[1].format, "raw");
  EXPECT_TRUE(p->disks[1].read_only);
  EXPECT_EQ(p->disks[1].iotune, IoTune{});
  EXPECT_NE(FindDisk(*p, "vdb"), nullptr);
  EXPECT_EQ(FindDisk(*p, "vdz"), nullptr);

  auto md = ParseMetadataElement(
      "<stratus:vm xmlns:stratus=\"https://stratus.dev/xmlns/vm/1\">{&quot;k&quot;:&#34;v&#x22;"
      "}</stratus:vm>\n");
  ASSERT_TRUE(md.ok()) << md.status().ToString();
  EXPECT_EQ(*md, R"({"k":"v"})");
}

TEST(DomainXmlTest, RoundTripThroughOwnRendering) {
  DomainSpec s = BaseSpec();
  DiskAttachment data;
  data.target_dev = "vdb";
  data.path = "/d/data.qcow2";
  data.iotune = {100, 4096};
  s.disks.push_back(data);
  auto p = ParseDomainXml(Render(s));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->uuid, s.uuid);
  EXPECT_EQ(p->metadata_json, s.metadata_json);
  ASSERT_EQ(p->disks.size(), 2u);
  EXPECT_EQ(p->disks[1].iotune, data.iotune);
  EXPECT_EQ(p->disks[1].path, data.path);
}

TEST(DomainXmlTest, RejectsMalformedXml) {
  EXPECT_FALSE(ParseDomainXml("<domain><name>x</domain>").ok());
  EXPECT_FALSE(ParseDomainXml("<domain attr=noquote/>").ok());
  EXPECT_FALSE(ParseDomainXml("<domain>&bogus;</domain>").ok());
  EXPECT_FALSE(ParseDomainXml("<network/>").ok());
  EXPECT_FALSE(ParseDomainXml("").ok());
}

}  // namespace
}  // namespace stratus::compute
