// Hub virtual network: the shared side of the hub-spoke topology. It holds no workload; it is where
// a firewall, a VPN/ExpressRoute gateway or Azure Bastion go when the organisation adds them, and
// the private DNS zones (modules/private-dns-zones.bicep) are linked to it as well as to the spoke,
// so resolvers in the hub answer for the private endpoints too.

@description('Azure region.')
param location string

@description('Name of the hub virtual network.')
param vnetName string

@description('Address space of the hub, e.g. 10.19.0.0/22.')
param addressPrefix string

@description('AzureFirewallSubnet prefix (/26 or larger). Reserved: deploy Azure Firewall into it and route the spoke through it to inspect egress.')
param firewallSubnetPrefix string

@description('GatewaySubnet prefix (/27 or larger). Reserved for a VPN or ExpressRoute gateway.')
param gatewaySubnetPrefix string

param tags object = {}

resource hub 'Microsoft.Network/virtualNetworks@2024-07-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [addressPrefix]
    }
    subnets: [
      {
        // The name is fixed by Azure Firewall.
        name: 'AzureFirewallSubnet'
        properties: {
          addressPrefix: firewallSubnetPrefix
        }
      }
      {
        // The name is fixed by the virtual network gateway.
        name: 'GatewaySubnet'
        properties: {
          addressPrefix: gatewaySubnetPrefix
        }
      }
    ]
  }
}

output vnetId string = hub.id
output vnetName string = hub.name
