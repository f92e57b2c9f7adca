// Azure Managed Redis (Microsoft.Cache/redisEnterprise + its `default` database), the current
// Redis offering on Azure (Azure Cache for Redis is being retired). Access keys are disabled:
// ingestion (idempotency keys), delivery (the delivery records) and the workflow (pending
// reschedules/cancels) sign in with Microsoft Entra tokens of their workload identities, and only
// principals with an access policy assignment on the database may connect.
//
// Clients connect to <name>.<region>.redis.azure.net:10000 over TLS (rediss://). The services use
// a plain (non-cluster-aware) client, so the database uses the Enterprise clustering policy: one
// endpoint, the proxy routes keys to shards.

param location string

@description('Globally unique: redis-<prefix>-<env>; the charts\' <SVC>_REDIS__URL is rediss://<name>.<location>.redis.azure.net:10000/0.')
param name string

@description('Azure Managed Redis SKU, e.g. Balanced_B0 (dev), Balanced_B5 (prod).')
param skuName string = 'Balanced_B5'

@description('Replicate every shard (zone-redundant where the region has zones): the 99.99 % SLA. Disabled halves the cost; dev only.')
param highAvailability bool = true

@description('Persistence of the data set: the delivery records live only here. aof (every second) loses at most ~1 s of writes on a full outage; rdb snapshots hourly; none.')
@allowed(['aof', 'rdb', 'none'])
param persistence string = 'aof'

@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string = 'Disabled'

@description('Identities that connect: [{ name: string (alphanumeric), principalId: string }]. Each gets the `default` access policy (all data commands) on the database.')
param dataUsers array

param tags object = {}

resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: highAvailability ? 'Enabled' : 'Disabled'
    publicNetworkAccess: publicNetworkAccess
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    clientProtocol: 'Encrypted'
    port: 10000
    clusteringPolicy: 'EnterpriseCluster'
    // Nothing is evicted under memory pressure: delivery records and idempotency keys expire by
    // their own TTLs; writes fail loudly instead of losing data.
    evictionPolicy: 'NoEviction'
    accessKeysAuthentication: 'Disabled'
    persistence: {
      aofEnabled: persistence == 'aof'
      aofFrequency: persistence == 'aof' ? '1s' : null
      rdbEnabled: persistence == 'rdb'
      rdbFrequency: persistence == 'rdb' ? '1h' : null
    }
  }
}

// Assignments on one database are applied one at a time.
@batchSize(1)
resource accessPolicyAssignments 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01' = [
  for user in dataUsers: {
    parent: database
    name: user.name
    properties: {
      accessPolicyName: 'default'
      user: {
        objectId: user.principalId
      }
    }
  }
]

output id string = cluster.id
output name string = cluster.name
output hostName string = cluster.properties.hostName
output port int = database.properties.port
output url string = 'rediss://${cluster.properties.hostName}:${database.properties.port}/0'
