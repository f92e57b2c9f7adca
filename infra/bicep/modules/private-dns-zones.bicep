// The private DNS zones of the private endpoints, in the hub's resource group and linked to the
// hub and to the spoke: pods resolve e.g. kv-dronedelivery-prod.vault.azure.net through the
// CNAME to privatelink.vaultcore.azure.net and get the endpoint's private address.

@description('Zone names, e.g. privatelink.vaultcore.azure.net.')
param zoneNames array

@description('Virtual networks to link every zone to (resource ids).')
param vnetIds array

param tags object = {}

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [
  for zone in zoneNames: {
    name: zone
    location: 'global'
    tags: tags
  }
]

// One link per (zone, network). Links have no auto-registration: only the endpoints' zone groups
// write records.
var links = flatten(map(range(0, length(zoneNames)), z => map(vnetIds, v => { zone: z, vnetId: v })))

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [
  for link in links: {
    name: '${zoneNames[link.zone]}/link-${last(split(link.vnetId, '/'))}'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: {
        id: link.vnetId
      }
    }
    dependsOn: [zones]
  }
]

@description('Zone resource ids, in the order of zoneNames.')
output zoneIds array = [for (zone, i) in zoneNames: zones[i].id]
