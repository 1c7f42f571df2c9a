// NicLayout: what a backup records of a VM's network interfaces, so that a restore can give the
// restored VM the same ones (network::NetworkService::Layouts writes it; recovery's restore
// reads it back). It is plain data, stored as JSON inside a recovery point's VM configuration
// (a vault manifest, so it travels with vault copies) and shown on the recovery point as
// properties.networkInterfaces. Format version 1; unknown members are ignored on read.
//
//   {"id": "/subscriptions/.../networkInterfaces/web1-nic", "name": "web1-nic",
//    "primary": true, "macAddress": "52-54-00-AB-CD-EF", "enableIPForwarding": false,
//    "networkSecurityGroup": "/subscriptions/.../networkSecurityGroups/web" (or absent),
//    "ipConfigurations": [{"name": "ipconfig1", "primary": true,
//        "subnet": "/subscriptions/.../virtualNetworks/v/subnets/front",
//        "privateIPAddress": "10.0.1.4", "privateIPAllocationMethod": "Dynamic",
//        "publicIPAddress": {"id": "...", "ipAddress": "203.0.113.2",
//                            "publicIPAllocationMethod": "Static", "sku": "Standard"}}]}
//
// Site recovery also records the VNETs of those NICs (NetworkService::VnetLayouts), so that a
// test failover can make an isolated network with the same address space:
//
//   {"id": "/subscriptions/.../virtualNetworks/v", "name": "v",
//    "addressPrefixes": ["10.1.0.0/16"], "dnsServers": [],
//    "subnets": [{"name": "front", "addressPrefix": "10.1.1.0/24"}]}
#pragma once

#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace stratus::network {

struct IpConfigLayout {
  std::string name;
  bool primary = false;
  std::string subnet_id;
  std::string private_ip;             // "10.0.1.4"
  std::string private_ip_method;      // "Dynamic" | "Static"
  std::string public_ip_id;           // "" for none
  std::string public_ip_address;      // what it held at backup time ("" for none)
  std::string public_ip_method;       // "Static" | "Dynamic"
  std::string public_ip_sku;          // "Standard" | "Basic"
};

struct NicLayout {
  std::string id;
  std::string name;
  bool primary = false;
  std::string mac;  // ARM form
  bool ip_forwarding = false;
  std::string nsg_id;  // "" for none
  std::vector<IpConfigLayout> ip_configs;
};

Json ToJson(const NicLayout& nic);
Json ToJson(const std::vector<NicLayout>& nics);
// InvalidArgument naming the member when `j` is not a layout (a damaged or foreign record).
Result<NicLayout> NicLayoutFromJson(const Json& j);
Result<std::vector<NicLayout>> NicLayoutsFromJson(const Json& j);

}  // namespace stratus::network
