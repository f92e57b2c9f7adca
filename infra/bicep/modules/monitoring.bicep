// Log Analytics workspace and a workspace-based Application Insights component. The services send
// OpenTelemetry through the Azure Monitor distro with the component's connection string, which
// modules/keyvault.bicep stores as a Key Vault secret (read straight from this resource there, so
// the string never passes through a deployment output).

param location string

param logAnalyticsName string

param appInsightsName string

@minValue(30)
@maxValue(730)
param retentionInDays int = 30

@description('Require Entra ID tokens for telemetry ingestion. Leave false until the services pass a credential to configure_azure_monitor (libs/dronecommon/telemetry.py does not yet): with it on, the instrumentation key alone is rejected.')
param appInsightsDisableLocalAuth bool = false

param tags object = {}

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-02-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: appInsightsDisableLocalAuth
    RetentionInDays: retentionInDays
  }
}

output workspaceId string = workspace.id
output appInsightsName string = appInsights.name
output appInsightsId string = appInsights.id
