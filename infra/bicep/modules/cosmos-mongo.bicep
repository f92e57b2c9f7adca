// Azure Cosmos DB for MongoDB vCore (now branded Azure DocumentDB; resource type
// Microsoft.DocumentDB/mongoClusters): the package and drone scheduler databases.
//
// Why vCore and not RU: the services authenticate keylessly with MONGODB-OIDC (PyMongo's OIDC
// callback asks the workload identity for a token for https://ossrdbms-aad.database.windows.net).
// vCore clusters accept Microsoft Entra ID principals as database users; the RU-based API for
// MongoDB (Microsoft.DocumentDB/databaseAccounts, kind MongoDB) authenticates only with account
// keys or connection strings, so with it the services would need a secret. vCore also runs the
// native MongoDB engine semantics the repositories rely on (transactions, unique indexes).
//
// Native (password) authentication must be enabled while the cluster is created, so the
// deployment passes an administrator password (a @secure() parameter, never in a file). Once the
// cluster exists, set entraIdOnly = true and deploy again to turn native authentication off.
//
// Entra users are registered as mongoClusters/users resources. The ARM API (2025-09-01) offers the
// `root` role on `admin` only; a less privileged Entra user (readWriteAnyDatabase, the narrowest
// role secondary users get) can only be created with a MongoDB createUser command by an Entra
// administrator (infra/README.md). registerServicesAsAdmins = false skips the services here for
// that path.

param location string

@description('Globally unique: cosmos-<prefix>-<env>; the charts\' <SVC>_MONGO__URL host is <name>.global.mongocluster.cosmos.azure.com.')
param name string

@description('Compute tier, e.g. M10 (dev, burstable), M30 (prod: the smallest with high availability).')
param computeTier string = 'M30'

@minValue(32)
param storageSizeGb int = 128

@description('Standby shard in another zone (99.99 % SLA, automatic failover). Requires M30 or larger.')
param highAvailability bool = true

@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string = 'Disabled'

@description('With public access (dev): let Azure services, the AKS nodes\' outbound address among them, through the firewall.')
param allowAzureServices bool = false

@description('With public access (dev): extra client ranges, [{ name, start, end }].')
param firewallRanges array = []

param serverVersion string = '8.0'

@description('Native administrator, needed at creation (break-glass; not used by the services).')
param administratorUserName string = 'dronedeliveryadmin'

@secure()
@description('Native administrator password: pass from the environment or a vault at deploy time.')
param administratorPassword string

@description('Turn native authentication off (only after the cluster exists).')
param entraIdOnly bool = false

@description('Services\' identities: [{ name, principalId }].')
param servicePrincipals array

@description('Register the services as Entra users through ARM (role root on admin, the only role the API offers). false: create them with readWriteAnyDatabase by hand (infra/README.md).')
param registerServicesAsAdmins bool = true

@description('Object ids of Entra *users* (not groups: not supported) who administer the databases.')
param adminUserObjectIds array = []

param tags object = {}

resource cluster 'Microsoft.DocumentDB/mongoClusters@2025-09-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    serverVersion: serverVersion
    administrator: {
      userName: administratorUserName
      password: administratorPassword
    }
    authConfig: {
      allowedModes: entraIdOnly ? ['MicrosoftEntraID'] : ['NativeAuth', 'MicrosoftEntraID']
    }
    compute: {
      tier: computeTier
    }
    storage: {
      sizeGb: storageSizeGb
    }
    sharding: {
      shardCount: 1
    }
    highAvailability: {
      targetMode: highAvailability ? 'ZoneRedundantPreferred' : 'Disabled'
    }
    publicNetworkAccess: publicNetworkAccess
  }
}

resource azureServices 'Microsoft.DocumentDB/mongoClusters/firewallRules@2025-09-01' = if (publicNetworkAccess == 'Enabled' && allowAzureServices) {
  parent: cluster
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource clientRanges 'Microsoft.DocumentDB/mongoClusters/firewallRules@2025-09-01' = [
  for fwRange in (publicNetworkAccess == 'Enabled' ? firewallRanges : []): {
    parent: cluster
    name: fwRange.name
    properties: {
      startIpAddress: fwRange.start
      endIpAddress: fwRange.end
    }
  }
]

var entraUsers = concat(
  map(registerServicesAsAdmins ? servicePrincipals : [], s => { principalId: s.principalId, principalType: 'ServicePrincipal' }),
  map(adminUserObjectIds, id => { principalId: id, principalType: 'User' })
)

// The user's name is the principal's object id. Registered one at a time.
@batchSize(1)
resource users 'Microsoft.DocumentDB/mongoClusters/users@2025-09-01' = [
  for user in entraUsers: {
    parent: cluster
    name: user.principalId
    properties: {
      identityProvider: {
        type: 'MicrosoftEntraID'
        properties: {
          principalType: user.principalType
        }
      }
      roles: [
        {
          db: 'admin'
          role: 'root'
        }
      ]
    }
  }
]

var host = '${cluster.name}.global.mongocluster.cosmos.azure.com'

output id string = cluster.id
output name string = cluster.name
output host string = host
@description('The charts\' <SVC>_MONGO__URL (no credentials: MONGODB-OIDC is configured by <SVC>_MONGO__USE_OIDC).')
output url string = 'mongodb+srv://${host}/?tls=true&retrywrites=false&maxIdleTimeMS=120000'
