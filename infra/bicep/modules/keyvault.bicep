// Key Vault with RBAC authorization, soft delete and purge protection. It holds the one secret-ish
// setting of the services, the Application Insights connection string, which the charts'
// SecretProviderClass mounts (objectName appinsights-connection-string). Each service identity
// gets Key Vault Secrets User on that secret only, not on the vault.

param location string

@description('3-24 characters, globally unique: kv-<prefix>-<env>, the charts\' keyVault.name.')
@minLength(3)
@maxLength(24)
param name string

@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string = 'Disabled'

@description('Application Insights component whose connection string is stored (same resource group).')
param appInsightsName string

@description('Secret name: the charts\' keyVault.secrets[].objectName.')
param appInsightsSecretName string = 'appinsights-connection-string'

@description('Object ids of the identities that read the secret (the services): Key Vault Secrets User on the secret.')
param secretReaderPrincipalIds array

@description('Log Analytics workspace for the audit log (every secret read).')
param logAnalyticsWorkspaceId string

param tags object = {}

var roles = {
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // Cannot be turned off again: nobody (no attacker, no mistake) purges a deleted vault early.
    enablePurgeProtection: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Written through the control plane by this deployment (no data-plane access or network path to
// the vault needed), straight from the component: the value never appears in an output.
resource appInsightsSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = {
  parent: vault
  name: appInsightsSecretName
  properties: {
    value: appInsights.properties.ConnectionString
    contentType: 'text/plain'
  }
}

resource secretReaders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in secretReaderPrincipalIds: {
    scope: appInsightsSecret
    name: guid(appInsightsSecret.id, principalId, roles.keyVaultSecretsUser)
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
      principalId: principalId
      principalType: 'ServicePrincipal'
      description: 'Read ${appInsightsSecretName} through the Secrets Store CSI driver'
    }
  }
]

resource auditLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: vault
  name: 'audit-to-log-analytics'
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
output appInsightsSecretName string = appInsightsSecret.name
