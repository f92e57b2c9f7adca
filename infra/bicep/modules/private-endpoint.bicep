// A private endpoint for one sub-resource (groupId) of a PaaS resource, with a DNS zone group so
// the endpoint writes its A records into the private DNS zone itself.

param location string

@description('Name of the private endpoint.')
param name string

@description('Subnet the endpoint takes its address from.')
param subnetId string

@description('Resource id of the service the endpoint connects to.')
param privateLinkServiceId string

@description('Sub-resource, e.g. vault, namespace, redisEnterprise, MongoCluster, registry.')
param groupId string

@description('Private DNS zone for the endpoint\'s records.')
param privateDnsZoneId string

param tags object = {}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: privateLinkServiceId
          groupIds: [groupId]
        }
      }
    ]
  }
}

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-07-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: replace(last(split(privateDnsZoneId, '/')), '.', '-')
        properties: {
          privateDnsZoneId: privateDnsZoneId
        }
      }
    ]
  }
}

output id string = endpoint.id
