// Development: smaller sizes, no high availability, public endpoints (still Entra ID only, no
// keys) so developers reach the data services without a VPN. Secrets and tenant-specific ids come
// from the environment at deploy time; see infra/README.md.
using 'main.bicep'

param environment = 'dev'
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

// Hub 10.9.0.0/22; spoke 10.10.0.0/16 (charts/*/values-dev.yaml: snet-agc = 10.10.8.0/24).
param hubAddressPrefix = '10.9.0.0/22'
param hubFirewallSubnetPrefix = '10.9.0.0/26'
param hubGatewaySubnetPrefix = '10.9.1.0/27'
param spokeAddressPrefix = '10.10.0.0/16'
param aksNodesSubnetPrefix = '10.10.0.0/22'
param privateEndpointsSubnetPrefix = '10.10.4.0/24'
param agcSubnetPrefix = '10.10.8.0/24'
param privateNetworking = false

param aksSkuTier = 'Free'
param availabilityZones = ['1', '2', '3']
// D2ds_v5 has a 75 GiB temp disk: the ephemeral OS disk must fit in it.
param systemPool = {
  vmSize: 'Standard_D2ds_v5'
  minCount: 1
  maxCount: 2
  osDiskSizeGB: 64
}
param userPool = {
  vmSize: 'Standard_D4ds_v5'
  minCount: 1
  maxCount: 3
  osDiskSizeGB: 128
}
param apiServerAuthorizedIpRanges = []
param enablePrivateCluster = false
param enableContainerInsights = true
param enableDefender = false
param dedicatedKedaIdentity = true

param acrSku = 'Standard'
param serviceBusSku = 'Standard'
param redisSku = 'Balanced_B0'
param redisHighAvailability = false
param redisPersistence = 'none'
param mongoComputeTier = 'M10'
param mongoStorageSizeGb = 32
param mongoHighAvailability = false
param mongoAdminPassword = readEnvironmentVariable('DRONEDELIVERY_MONGO_ADMIN_PASSWORD')
param mongoEntraIdOnly = false
param mongoRegisterServicesAsAdmins = true
param mongoAdminUserObjectIds = []
param mongoFirewallRanges = []

param logRetentionInDays = 30
param appInsightsDisableLocalAuth = false
param tags = {
  'cost-center': 'dronedelivery'
}
