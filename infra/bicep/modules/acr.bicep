// Container registry for the five service images (dronedelivery/<service>). No admin user and no
// anonymous pull: the AKS kubelet identity pulls with AcrPull, people and CI push with AcrPush.

param location string

@description('Globally unique, alphanumeric: acr<prefix><env>, the charts\' image.registry without .azurecr.io.')
param name string

@description('Premium: private endpoint, zone redundancy, retention of untagged manifests. Standard: public only.')
@allowed(['Standard', 'Premium'])
param sku string = 'Premium'

@description('Public endpoint: Enabled lets people and hosted CI push; the nodes pull through the private endpoint when there is one.')
@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string = 'Enabled'

@description('Kubelet identity of the AKS cluster (object id): AcrPull.')
param kubeletObjectId string

@description('Principals that push images (object ids of groups): AcrPush.')
param pushGroupObjectIds array = []

param tags object = {}

var roles = {
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  acrPush: '8311e382-0749-4cb8-b61a-304f252e45ec'
}

var premium = sku == 'Premium'

resource registry 'Microsoft.ContainerRegistry/registries@2025-04-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: publicNetworkAccess
    networkRuleBypassOptions: 'AzureServices'
    zoneRedundancy: premium ? 'Enabled' : 'Disabled'
    dataEndpointEnabled: premium
    policies: {
      retentionPolicy: premium
        ? {
            days: 30
            status: 'enabled'
          }
        : null
    }
  }
}

resource kubeletPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: registry
  name: guid(registry.id, kubeletObjectId, roles.acrPull)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: kubeletObjectId
    principalType: 'ServicePrincipal'
    description: 'AKS kubelet: pull the service images'
  }
}

resource groupPush 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for groupId in pushGroupObjectIds: {
    scope: registry
    name: guid(registry.id, groupId, roles.acrPush)
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPush)
      principalId: groupId
      principalType: 'Group'
      description: 'Build and push the service images'
    }
  }
]

output id string = registry.id
output name string = registry.name
output loginServer string = registry.properties.loginServer
