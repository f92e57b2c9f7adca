// Spoke virtual network for one environment: the AKS nodes, the private endpoints of the data
// services, and the subnet delegated to Application Gateway for Containers (AGC).
//
// With Azure CNI Overlay pods take their addresses from the cluster's pod CIDR, not from this
// network, so the node subnet only needs one address per node (a /22 holds ~1000 nodes).
// The AGC subnet must be a /24 or larger and delegated to Microsoft.ServiceNetworking/trafficControllers;
// its prefix is what the charts allow into the public services (values-<env>.yaml:
// networkPolicy.gateway.cidrs), so keep them equal.

@description('Azure region.')
param location string

@description('Name of the spoke virtual network.')
param vnetName string

@description('Address space of the spoke, e.g. 10.20.0.0/16.')
param addressPrefix string

@description('AKS node subnet prefix, e.g. 10.20.0.0/22.')
param aksNodesSubnetPrefix string

@description('Private endpoint subnet prefix, e.g. 10.20.4.0/24.')
param privateEndpointsSubnetPrefix string

@description('Application Gateway for Containers subnet prefix: a /24 or larger, e.g. 10.20.8.0/24.')
param agcSubnetPrefix string

param tags object = {}

var subnetNames = {
  aksNodes: 'snet-aks-nodes'
  privateEndpoints: 'snet-private-endpoints'
  agc: 'snet-agc'
}

// Subnet NSGs with the platform defaults (VNet and Azure Load Balancer inbound, no Internet
// inbound). AKS adds its own rules on the node NICs; the services are reached only through AGC.
resource nodesNsg 'Microsoft.Network/networkSecurityGroups@2024-07-01' = {
  name: 'nsg-${vnetName}-aks-nodes'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource privateEndpointsNsg 'Microsoft.Network/networkSecurityGroups@2024-07-01' = {
  name: 'nsg-${vnetName}-private-endpoints'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource spoke 'Microsoft.Network/virtualNetworks@2024-07-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [addressPrefix]
    }
    subnets: [
      {
        name: subnetNames.aksNodes
        properties: {
          addressPrefix: aksNodesSubnetPrefix
          networkSecurityGroup: {
            id: nodesNsg.id
          }
        }
      }
      {
        name: subnetNames.privateEndpoints
        properties: {
          addressPrefix: privateEndpointsSubnetPrefix
          // NSGs and route tables also apply to the private endpoints.
          privateEndpointNetworkPolicies: 'Enabled'
          networkSecurityGroup: {
            id: privateEndpointsNsg.id
          }
        }
      }
      {
        name: subnetNames.agc
        properties: {
          addressPrefix: agcSubnetPrefix
          delegations: [
            {
              name: 'Microsoft.ServiceNetworking.trafficControllers'
              properties: {
                serviceName: 'Microsoft.ServiceNetworking/trafficControllers'
              }
            }
          ]
        }
      }
    ]
  }
}

output vnetId string = spoke.id
output vnetName string = spoke.name
output aksNodesSubnetId string = '${spoke.id}/subnets/${subnetNames.aksNodes}'
output aksNodesSubnetName string = subnetNames.aksNodes
output privateEndpointsSubnetId string = '${spoke.id}/subnets/${subnetNames.privateEndpoints}'
output agcSubnetId string = '${spoke.id}/subnets/${subnetNames.agc}'
output agcSubnetName string = subnetNames.agc
output agcSubnetPrefix string = agcSubnetPrefix
output privateEndpointsSubnetPrefix string = privateEndpointsSubnetPrefix
