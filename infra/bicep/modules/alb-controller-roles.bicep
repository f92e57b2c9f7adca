// Roles of the ALB controller (Application Gateway for Containers) identity on the AKS node
// resource group, where the controller creates and manages the AGC resource of the "managed"
// deployment (infra/k8s/gateway.yaml: alb-namespace/alb-name annotations, an
// ApplicationLoadBalancer custom resource). Deployed with that resource group as its scope.

@description('Object id of the ALB controller identity.')
param principalId string

var roles = {
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
  agcConfigurationManager: 'fbc52c3f-28ad-4303-a892-8a056630b8f1'
}

resource nodeGroupRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in [roles.reader, roles.agcConfigurationManager]: {
    name: guid(resourceGroup().id, principalId, role)
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: principalId
      principalType: 'ServicePrincipal'
      description: 'ALB controller: manage Application Gateway for Containers in the node resource group'
    }
  }
]
