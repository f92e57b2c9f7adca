// One role assignment on one subnet (e.g. Network Contributor for the ALB controller on the
// delegated AGC subnet, so it can associate Application Gateway for Containers with it).

param vnetName string

param subnetName string

param principalId string

@description('Built-in role definition id (GUID).')
param roleDefinitionId string

param assignmentDescription string

resource vnet 'Microsoft.Network/virtualNetworks@2024-07-01' existing = {
  name: vnetName
}

resource subnet 'Microsoft.Network/virtualNetworks/subnets@2024-07-01' existing = {
  parent: vnet
  name: subnetName
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: subnet
  name: guid(subnet.id, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}
