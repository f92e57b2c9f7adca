// Production. Secrets and tenant-specific ids come from the environment at deploy time
// (readEnvironmentVariable is evaluated by `az deployment ... -p main.prod.bicepparam`), so this
// file holds none; see infra/README.md.
using 'main.bicep'

param environment = 'prod'
param location = 'eastus2'
param namePrefix = 'dronedelivery'
param adminGroupObjectId = readEnvironmentVariable('DRONEDELIVERY_ADMIN_GROUP_ID')
// The API app registrations' application ids (infra/README.md, "App registrations").
param apiAppIds = {
  public: readEnvironmentVariable('DRONEDELIVERY_PUBLIC_API_APP_ID')
  delivery: readEnvironmentVariable('DRONEDELIVERY_DELIVERY_API_APP_ID')
  package: readEnvironmentVariable('DRONEDELIVERY_PACKAGE_API_APP_ID')
  dronescheduler: readEnvironmentVariable('DRONEDELIVERY_DRONESCHEDULER_API_APP_ID')
  simulator: readEnvironmentVariable('DRONEDELIVERY_SIMULATOR_API_APP_ID')
  notifier: readEnvironmentVariable('DRONEDELIVERY_NOTIFIER_API_APP_ID')
  webapp: readEnvironmentVariable('DRONEDELIVERY_WEBAPP_APP_ID')
}
param appNamespace = 'dronedelivery'

// Hub 10.19.0.0/22; spoke 10.20.0.0/16 (charts/*/values-prod.yaml: snet-agc = 10.20.8.0/24).
param hubAddressPrefix = '10.19.0.0/22'
param hubFirewallSubnetPrefix = '10.19.0.0/26'
param hubGatewaySubnetPrefix = '10.19.1.0/27'
param spokeAddressPrefix = '10.20.0.0/16'
param aksNodesSubnetPrefix = '10.20.0.0/22'
param privateEndpointsSubnetPrefix = '10.20.4.0/24'
param agcSubnetPrefix = '10.20.8.0/24'
param privateNetworking = true

param aksSkuTier = 'Standard'
param availabilityZones = ['1', '2', '3']
// Three system nodes, one per zone. The user pool holds the services at their prod maximum
// (infra/k8s/resourcequota.yaml: 16 CPU / 17 GiB requested) with room for a zone to fail.
param systemPool = {
  vmSize: 'Standard_D4ds_v5'
  minCount: 3
  maxCount: 5
  osDiskSizeGB: 128
}
param userPool = {
  vmSize: 'Standard_D4ds_v5'
  minCount: 3
  maxCount: 12
  osDiskSizeGB: 128
}
param apiServerAuthorizedIpRanges = []
param enablePrivateCluster = false
param enableContainerInsights = true
param enableDefender = true
param dedicatedKedaIdentity = true

param acrSku = 'Premium'
param serviceBusSku = 'Premium'
param serviceBusPremiumCapacity = 1
param redisSku = 'Balanced_B5'
param redisHighAvailability = true
param redisPersistence = 'aof'
param mongoComputeTier = 'M30'
param mongoStorageSizeGb = 128
param mongoHighAvailability = true
param mongoAdminPassword = readEnvironmentVariable('DRONEDELIVERY_MONGO_ADMIN_PASSWORD')
param mongoEntraIdOnly = false
param mongoRegisterServicesAsAdmins = true
param mongoAdminUserObjectIds = []
param mongoFirewallRanges = []

param logRetentionInDays = 90
param appInsightsDisableLocalAuth = false
param tags = {
  'cost-center': 'dronedelivery'
}
