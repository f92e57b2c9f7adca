// One direction of a virtual network peering. Deployed twice (hub -> spoke in the hub's resource
// group, spoke -> hub in the spoke's), since a peering is a child of the network it starts from.

@description('Name of the local virtual network (in this module\'s resource group).')
param localVnetName string

@description('Resource id of the remote virtual network.')
param remoteVnetId string

@description('Name of the peering resource.')
param peeringName string

resource localVnet 'Microsoft.Network/virtualNetworks@2024-07-01' existing = {
  name: localVnetName
}

resource peering 'Microsoft.Network/virtualNetworks/virtualNetworkPeerings@2024-07-01' = {
  parent: localVnet
  name: peeringName
  properties: {
    remoteVirtualNetwork: {
      id: remoteVnetId
    }
    allowVirtualNetworkAccess: true
    // Traffic a future hub firewall forwards on behalf of the spoke.
    allowForwardedTraffic: true
    allowGatewayTransit: false
    useRemoteGateways: false
  }
}

output peeringId string = peering.id
