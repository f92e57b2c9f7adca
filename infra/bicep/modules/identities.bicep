// User-assigned managed identities for Kubernetes workloads, each with federated identity
// credentials that let a Kubernetes ServiceAccount of the AKS cluster sign in as it (Microsoft
// Entra Workload ID): issuer = the cluster's OIDC issuer, subject =
// system:serviceaccount:<namespace>:<service account>, audience = api://AzureADTokenExchange.

param location string

@description('Identities to create: [{ name: string, resourceName: string, subjects: string[] }]. `subjects` are the ServiceAccounts that may use the identity.')
param identities array

@description('OIDC issuer URL of the AKS cluster (properties.oidcIssuerProfile.issuerURL).')
param oidcIssuerUrl string

param tags object = {}

// The audience every Kubernetes projected service account token for workload identity carries.
var tokenExchangeAudience = 'api://AzureADTokenExchange'

resource uami 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = [
  for identity in identities: {
    name: identity.resourceName
    location: location
    tags: union(tags, { workload: identity.name })
  }
]

// One credential per (identity, subject), flattened so a single loop can create them.
var credentials = flatten(map(
  identities,
  identity => map(identity.subjects, subject => {
    identityName: identity.resourceName
    credentialName: replace(replace(subject, 'system:serviceaccount:', 'aks-'), ':', '-')
    subject: subject
  })
))

// Writes to the federated credentials of one identity must not run concurrently (the API
// rejects them), so all of them are created one at a time.
@batchSize(1)
resource federatedCredentials 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2024-11-30' = [
  for credential in credentials: {
    name: '${credential.identityName}/${credential.credentialName}'
    properties: {
      issuer: oidcIssuerUrl
      subject: credential.subject
      audiences: [tokenExchangeAudience]
    }
    dependsOn: [uami]
  }
]

@description('[{ name, resourceName, id, clientId, principalId }] in the order of `identities`.')
output items array = [
  for (identity, i) in identities: {
    name: identity.name
    resourceName: uami[i].name
    id: uami[i].id
    clientId: uami[i].properties.clientId
    principalId: uami[i].properties.principalId
  }
]
