// Fabrikam Drone Delivery on Azure: everything the Helm charts (charts/) and the Flux layout
// (infra/gitops/) expect, for one environment.
//
//   az deployment sub create -l eastus2 -n dronedelivery-prod \
//     -f infra/bicep/main.bicep -p infra/bicep/main.prod.bicepparam
//
// Two resource groups: the hub (hub VNet, private DNS zones) and the environment (spoke VNet,
// AKS, ACR, Key Vault, Service Bus, Cosmos DB for MongoDB vCore, Azure Managed Redis, Azure
// Communication Services (e-mail and SMS), Log Analytics + Application Insights, one managed
// identity per service). Names follow the charts'
// convention <kind>-<prefix>-<env> (values-<env>.yaml hold them); the outputs carry everything the
// charts and the Flux ConfigMap `cluster-settings` need (infra/README.md maps them).
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

@description('Environment: names, sizes and the network posture follow it.')
@allowed(['dev', 'prod'])
param environment string

@description('Azure region of every resource. The charts\' Redis URLs name it (rediss://<name>.<region>.redis.azure.net).')
param location string = 'eastus2'

@description('Name prefix: resources are <kind>-<prefix>-<env> (ACR: acr<prefix><env>). Several names are globally unique.')
@minLength(3)
@maxLength(13)
param namePrefix string = 'dronedelivery'

@description('Object id of the Entra ID group of platform administrators: AKS cluster admin (Azure RBAC), image push.')
param adminGroupObjectId string

@description('Application (client) ids of the app registrations: the APIs public (the customers\' API), delivery, package, dronescheduler, simulator, notifier (the services\' v2 tokens carry these ids as aud), and webapp (the web app\'s sign-in client). Entra applications are not ARM resources: infra/README.md, "App registrations", makes them with az ad app.')
param apiAppIds object

@description('Kubernetes namespace of the services (the charts\' release namespace).')
param appNamespace string = 'dronedelivery'

// Network ---------------------------------------------------------------------------------------

param hubAddressPrefix string
param hubFirewallSubnetPrefix string
param hubGatewaySubnetPrefix string
param spokeAddressPrefix string
param aksNodesSubnetPrefix string
param privateEndpointsSubnetPrefix string

@description('Application Gateway for Containers subnet (/24 or larger); the charts\' networkPolicy.gateway.cidrs.')
param agcSubnetPrefix string

@description('Private endpoints (Key Vault, Redis, Cosmos DB, and Service Bus and ACR when Premium) and public network access disabled on the data services. false (dev): public endpoints, still Entra-only authentication.')
param privateNetworking bool = true

// AKS -------------------------------------------------------------------------------------------

@allowed(['Free', 'Standard', 'Premium'])
param aksSkuTier string = 'Standard'

param kubernetesVersion string = ''

param availabilityZones array = ['1', '2', '3']

param systemPool object
param userPool object

param apiServerAuthorizedIpRanges array = []

param enablePrivateCluster bool = false

param enableContainerInsights bool = true

param enableDefender bool = false

@description('Give KEDA its own identity (Service Bus Data Owner on the queue) instead of federating KEDA\'s operator with the workflow\'s identity. true needs the workflow chart\'s keda.identityId set to the kedaClientId output (infra/README.md).')
param dedicatedKedaIdentity bool = true

// Data services ---------------------------------------------------------------------------------

@allowed(['Standard', 'Premium'])
param acrSku string = 'Premium'

@allowed(['Standard', 'Premium'])
param serviceBusSku string = 'Premium'

param serviceBusPremiumCapacity int = 1

param redisSku string = 'Balanced_B5'

param redisHighAvailability bool = true

@allowed(['aof', 'rdb', 'none'])
param redisPersistence string = 'aof'

param mongoComputeTier string = 'M30'

param mongoStorageSizeGb int = 128

param mongoHighAvailability bool = true

@secure()
@description('Native administrator password of the MongoDB cluster (required at creation). From the environment at deploy time, never in a file.')
param mongoAdminPassword string

param mongoEntraIdOnly bool = false

param mongoRegisterServicesAsAdmins bool = true

@description('Entra *user* object ids who administer the MongoDB databases.')
param mongoAdminUserObjectIds array = []

@description('Extra client ranges for the MongoDB firewall when it is public (dev): [{ name, start, end }].')
param mongoFirewallRanges array = []

// Monitoring ------------------------------------------------------------------------------------

param logRetentionInDays int = 30

param appInsightsDisableLocalAuth bool = false

param tags object = {}

// ---------------------------------------------------------------------------------------------
// Names and the workloads
// ---------------------------------------------------------------------------------------------

var allTags = union(tags, {
  application: 'dronedelivery'
  environment: environment
  'managed-by': 'bicep'
})

var names = {
  resourceGroup: 'rg-${namePrefix}-${environment}'
  hubResourceGroup: 'rg-${namePrefix}-hub-${environment}'
  nodeResourceGroup: 'rg-${namePrefix}-${environment}-aks-nodes'
  hubVnet: 'vnet-${namePrefix}-hub-${environment}'
  spokeVnet: 'vnet-${namePrefix}-${environment}'
  aks: 'aks-${namePrefix}-${environment}'
  acr: 'acr${replace(namePrefix, '-', '')}${environment}'
  keyVault: 'kv-${namePrefix}-${environment}'
  serviceBus: 'sb-${namePrefix}-${environment}'
  redis: 'redis-${namePrefix}-${environment}'
  mongo: 'cosmos-${namePrefix}-${environment}'
  logAnalytics: 'log-${namePrefix}-${environment}'
  appInsights: 'appi-${namePrefix}-${environment}'
  communication: 'acs-${namePrefix}-${environment}'
  emailService: 'acs-email-${namePrefix}-${environment}'
}

// The five services, their Kubernetes ServiceAccounts (each chart names its ServiceAccount after
// the chart: charts/dronedelivery-lib/templates/_serviceaccount.tpl) and what each one may touch.
// The queue roles are on `deliveryrequests`; the workflow also sends (dead-letter replay:
// `python -m workflow.deadletters replay` in its pod). Redis users: ingestion (idempotency keys),
// delivery (records), workflow (pending reschedules/cancels), simulator (flight state, events),
// notifier (its outbox, events, webhook secrets), webapp (sessions). `communication`: sends through
// Azure Communication Services (the notifier). Every chart mounts the App Insights secret from Key
// Vault (the web app also its session key).
var workloads = [
  {
    name: 'ingestion'
    serviceAccount: 'ingestion'
    queueSend: true
    queueReceive: false
    redis: true
    mongo: false
    keyVault: true
    communication: false
  }
  {
    name: 'delivery'
    serviceAccount: 'delivery'
    queueSend: false
    queueReceive: false
    redis: true
    mongo: false
    keyVault: true
    communication: false
  }
  {
    name: 'package'
    serviceAccount: 'package'
    queueSend: false
    queueReceive: false
    redis: false
    mongo: true
    keyVault: true
    communication: false
  }
  {
    name: 'dronescheduler'
    serviceAccount: 'dronescheduler'
    queueSend: false
    queueReceive: false
    redis: false
    mongo: true
    keyVault: true
    communication: false
  }
  {
    name: 'workflow'
    serviceAccount: 'workflow'
    queueSend: true
    queueReceive: true
    redis: true
    mongo: false
    keyVault: true
    communication: false
  }
  {
    name: 'simulator'
    serviceAccount: 'simulator'
    queueSend: false
    queueReceive: false
    redis: true
    mongo: false
    keyVault: true
    communication: false
  }
  {
    name: 'notifier'
    serviceAccount: 'notifier'
    queueSend: false
    queueReceive: false
    redis: true
    mongo: false
    keyVault: true
    communication: true
  }
  {
    name: 'webapp'
    serviceAccount: 'webapp'
    queueSend: false
    queueReceive: false
    redis: true
    mongo: false
    keyVault: true
    communication: false
  }
]

// The KEDA add-on's operator and the ALB controller (Application Gateway for Containers) also sign
// in with workload identity, from their own ServiceAccounts.
var kedaSubject = 'system:serviceaccount:kube-system:keda-operator'
var albControllerSubject = 'system:serviceaccount:azure-alb-system:alb-controller-sa'

var workloadIdentities = [
  for w in workloads: {
    name: w.name
    resourceName: 'id-${w.name}-${environment}'
    subjects: concat(
      ['system:serviceaccount:${appNamespace}:${w.serviceAccount}'],
      w.name == 'workflow' && !dedicatedKedaIdentity ? [kedaSubject] : []
    )
  }
]

var platformIdentities = concat(
  dedicatedKedaIdentity
    ? [
        {
          name: 'keda'
          resourceName: 'id-keda-${environment}'
          subjects: [kedaSubject]
        }
      ]
    : [],
  [
    {
      name: 'albcontroller'
      resourceName: 'id-alb-controller-${environment}'
      subjects: [albControllerSubject]
    }
  ]
)

// Whose identity KEDA's operator uses for the queue length.
var kedaIdentityName = dedicatedKedaIdentity ? 'keda' : 'workflow'

var appInsightsSecretName = 'appinsights-connection-string'

var privateDnsZoneNames = {
  keyVault: 'privatelink.vaultcore.azure.net'
  serviceBus: 'privatelink.servicebus.windows.net'
  redis: 'privatelink.redis.azure.net'
  mongo: 'privatelink.mongocluster.cosmos.azure.com'
  acr: 'privatelink.azurecr.io'
}

var publicAccess = privateNetworking ? 'Disabled' : 'Enabled'

// ---------------------------------------------------------------------------------------------
// Resource groups and network
// ---------------------------------------------------------------------------------------------

resource hubRg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.hubResourceGroup
  location: location
  tags: allTags
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: allTags
}

module hub 'modules/network-hub.bicep' = {
  name: 'hub-network'
  scope: hubRg
  params: {
    location: location
    vnetName: names.hubVnet
    addressPrefix: hubAddressPrefix
    firewallSubnetPrefix: hubFirewallSubnetPrefix
    gatewaySubnetPrefix: hubGatewaySubnetPrefix
    tags: allTags
  }
}

module spoke 'modules/network-spoke.bicep' = {
  name: 'spoke-network'
  scope: rg
  params: {
    location: location
    vnetName: names.spokeVnet
    addressPrefix: spokeAddressPrefix
    aksNodesSubnetPrefix: aksNodesSubnetPrefix
    privateEndpointsSubnetPrefix: privateEndpointsSubnetPrefix
    agcSubnetPrefix: agcSubnetPrefix
    tags: allTags
  }
}

module hubToSpoke 'modules/vnet-peering.bicep' = {
  name: 'peering-hub-to-spoke'
  scope: hubRg
  params: {
    localVnetName: hub.outputs.vnetName
    remoteVnetId: spoke.outputs.vnetId
    peeringName: 'peer-to-${names.spokeVnet}'
  }
}

module spokeToHub 'modules/vnet-peering.bicep' = {
  name: 'peering-spoke-to-hub'
  scope: rg
  params: {
    localVnetName: spoke.outputs.vnetName
    remoteVnetId: hub.outputs.vnetId
    peeringName: 'peer-to-${names.hubVnet}'
  }
}

module dnsZones 'modules/private-dns-zones.bicep' = if (privateNetworking) {
  name: 'private-dns-zones'
  scope: hubRg
  params: {
    zoneNames: [
      privateDnsZoneNames.keyVault
      privateDnsZoneNames.serviceBus
      privateDnsZoneNames.redis
      privateDnsZoneNames.mongo
      privateDnsZoneNames.acr
    ]
    vnetIds: [hub.outputs.vnetId, spoke.outputs.vnetId]
    tags: allTags
  }
}

// ---------------------------------------------------------------------------------------------
// Monitoring, AKS, identities
// ---------------------------------------------------------------------------------------------

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    retentionInDays: logRetentionInDays
    appInsightsDisableLocalAuth: appInsightsDisableLocalAuth
    tags: allTags
  }
}

module aks 'modules/aks.bicep' = {
  name: 'aks'
  scope: rg
  params: {
    location: location
    clusterName: names.aks
    nodeResourceGroupName: names.nodeResourceGroup
    kubernetesVersion: kubernetesVersion
    nodeSubnetId: spoke.outputs.aksNodesSubnetId
    vnetName: spoke.outputs.vnetName
    nodeSubnetName: spoke.outputs.aksNodesSubnetName
    adminGroupObjectId: adminGroupObjectId
    skuTier: aksSkuTier
    availabilityZones: availabilityZones
    systemPool: systemPool
    userPool: userPool
    apiServerAuthorizedIpRanges: apiServerAuthorizedIpRanges
    enablePrivateCluster: enablePrivateCluster
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    enableContainerInsights: enableContainerInsights
    enableDefender: enableDefender
    tags: allTags
  }
}

module identities 'modules/identities.bicep' = {
  name: 'workload-identities'
  scope: rg
  params: {
    location: location
    identities: concat(workloadIdentities, platformIdentities)
    oidcIssuerUrl: aks.outputs.oidcIssuerUrl
    tags: allTags
  }
}

// name -> { name, resourceName, id, clientId, principalId }
var identityByName = toObject(identities.outputs.items, item => item.name)

// ALB controller: manage AGC in the node resource group, join AGC to its delegated subnet.
module albControllerNodeGroupRoles 'modules/alb-controller-roles.bicep' = {
  name: 'alb-controller-node-group-roles'
  scope: resourceGroup(names.nodeResourceGroup)
  params: {
    principalId: identityByName.albcontroller.principalId
  }
  dependsOn: [aks]
}

module albControllerSubnetRole 'modules/subnet-role.bicep' = {
  name: 'alb-controller-subnet-role'
  scope: rg
  params: {
    vnetName: spoke.outputs.vnetName
    subnetName: spoke.outputs.agcSubnetName
    principalId: identityByName.albcontroller.principalId
    roleDefinitionId: '4d97b98b-1d4f-4787-a291-c67834d212e7' // Network Contributor
    assignmentDescription: 'ALB controller: associate Application Gateway for Containers with snet-agc'
  }
}

// ---------------------------------------------------------------------------------------------
// Data services, each with its data-plane roles for the service identities
// ---------------------------------------------------------------------------------------------

module acr 'modules/acr.bicep' = {
  name: 'container-registry'
  scope: rg
  params: {
    location: location
    name: names.acr
    sku: acrSku
    publicNetworkAccess: 'Enabled'
    kubeletObjectId: aks.outputs.kubeletObjectId
    pushGroupObjectIds: [adminGroupObjectId]
    tags: allTags
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    location: location
    name: names.keyVault
    publicNetworkAccess: publicAccess
    appInsightsName: monitoring.outputs.appInsightsName
    appInsightsSecretName: appInsightsSecretName
    secretReaderPrincipalIds: map(filter(workloads, w => w.keyVault), w => identityByName[w.name].principalId)
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    tags: allTags
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'service-bus'
  scope: rg
  params: {
    location: location
    name: names.serviceBus
    sku: serviceBusSku
    premiumCapacity: serviceBusPremiumCapacity
    publicNetworkAccess: serviceBusSku == 'Premium' ? publicAccess : 'Enabled'
    queueName: 'deliveryrequests'
    senderPrincipalIds: map(filter(workloads, w => w.queueSend), w => identityByName[w.name].principalId)
    receiverPrincipalIds: map(filter(workloads, w => w.queueReceive), w => identityByName[w.name].principalId)
    queueOwnerPrincipalIds: [identityByName[kedaIdentityName].principalId]
    tags: allTags
  }
}

module redis 'modules/redis.bicep' = {
  name: 'managed-redis'
  scope: rg
  params: {
    location: location
    name: names.redis
    skuName: redisSku
    highAvailability: redisHighAvailability
    persistence: redisPersistence
    publicNetworkAccess: publicAccess
    dataUsers: map(filter(workloads, w => w.redis), w => {
      name: w.name
      principalId: identityByName[w.name].principalId
    })
    tags: allTags
  }
}

module mongo 'modules/cosmos-mongo.bicep' = {
  name: 'cosmos-mongo'
  scope: rg
  params: {
    location: location
    name: names.mongo
    computeTier: mongoComputeTier
    storageSizeGb: mongoStorageSizeGb
    highAvailability: mongoHighAvailability
    publicNetworkAccess: publicAccess
    allowAzureServices: !privateNetworking
    firewallRanges: mongoFirewallRanges
    administratorPassword: mongoAdminPassword
    entraIdOnly: mongoEntraIdOnly
    servicePrincipals: map(filter(workloads, w => w.mongo), w => {
      name: w.name
      principalId: identityByName[w.name].principalId
    })
    registerServicesAsAdmins: mongoRegisterServicesAsAdmins
    adminUserObjectIds: mongoAdminUserObjectIds
    tags: allTags
  }
}

// E-mail and SMS for the notifier (a global service: no private endpoint; it is reached over
// HTTPS with Entra ID tokens).
module communication 'modules/communication.bicep' = {
  name: 'communication'
  scope: rg
  params: {
    name: names.communication
    emailServiceName: names.emailService
    senderPrincipalIds: map(filter(workloads, w => w.communication), w => identityByName[w.name].principalId)
    tags: allTags
  }
}

// ---------------------------------------------------------------------------------------------
// Private endpoints (prod): in the spoke, their records in the hub's private DNS zones
// ---------------------------------------------------------------------------------------------

module keyVaultEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-key-vault'
  scope: rg
  params: {
    location: location
    name: 'pe-${names.keyVault}'
    subnetId: spoke.outputs.privateEndpointsSubnetId
    privateLinkServiceId: keyVault.outputs.id
    groupId: 'vault'
    privateDnsZoneId: resourceId(subscription().subscriptionId, names.hubResourceGroup, 'Microsoft.Network/privateDnsZones', privateDnsZoneNames.keyVault)
    tags: allTags
  }
  dependsOn: [dnsZones]
}

module serviceBusEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking && serviceBusSku == 'Premium') {
  name: 'pe-service-bus'
  scope: rg
  params: {
    location: location
    name: 'pe-${names.serviceBus}'
    subnetId: spoke.outputs.privateEndpointsSubnetId
    privateLinkServiceId: serviceBus.outputs.id
    groupId: 'namespace'
    privateDnsZoneId: resourceId(subscription().subscriptionId, names.hubResourceGroup, 'Microsoft.Network/privateDnsZones', privateDnsZoneNames.serviceBus)
    tags: allTags
  }
  dependsOn: [dnsZones]
}

module redisEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-redis'
  scope: rg
  params: {
    location: location
    name: 'pe-${names.redis}'
    subnetId: spoke.outputs.privateEndpointsSubnetId
    privateLinkServiceId: redis.outputs.id
    groupId: 'redisEnterprise'
    privateDnsZoneId: resourceId(subscription().subscriptionId, names.hubResourceGroup, 'Microsoft.Network/privateDnsZones', privateDnsZoneNames.redis)
    tags: allTags
  }
  dependsOn: [dnsZones]
}

module mongoEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-cosmos-mongo'
  scope: rg
  params: {
    location: location
    name: 'pe-${names.mongo}'
    subnetId: spoke.outputs.privateEndpointsSubnetId
    privateLinkServiceId: mongo.outputs.id
    groupId: 'MongoCluster'
    privateDnsZoneId: resourceId(subscription().subscriptionId, names.hubResourceGroup, 'Microsoft.Network/privateDnsZones', privateDnsZoneNames.mongo)
    tags: allTags
  }
  dependsOn: [dnsZones]
}

module acrEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking && acrSku == 'Premium') {
  name: 'pe-container-registry'
  scope: rg
  params: {
    location: location
    name: 'pe-${names.acr}'
    subnetId: spoke.outputs.privateEndpointsSubnetId
    privateLinkServiceId: acr.outputs.id
    groupId: 'registry'
    privateDnsZoneId: resourceId(subscription().subscriptionId, names.hubResourceGroup, 'Microsoft.Network/privateDnsZones', privateDnsZoneNames.acr)
    tags: allTags
  }
  dependsOn: [dnsZones]
}

// ---------------------------------------------------------------------------------------------
// Outputs: what the charts (values-<env>.yaml, --set) and Flux (cluster-settings) need
// ---------------------------------------------------------------------------------------------

output tenantId string = tenant().tenantId
output resourceGroupName string = rg.name
output aksName string = aks.outputs.name
output aksNodeResourceGroup string = aks.outputs.nodeResourceGroup
@description('OIDC issuer of the cluster: the issuer of every federated credential.')
output oidcIssuerUrl string = aks.outputs.oidcIssuerUrl

@description('image.registry of every chart.')
output acrLoginServer string = acr.outputs.loginServer

@description('<SVC>_QUEUE__SERVICEBUS_NAMESPACE of ingestion and workflow (KEDA derives the namespace name from it).')
output serviceBusFqdn string = serviceBus.outputs.fqdn
output serviceBusQueueName string = serviceBus.outputs.queueName

output redisHostName string = redis.outputs.hostName
@description('<SVC>_REDIS__URL of ingestion, delivery and workflow.')
output redisUrl string = redis.outputs.url

output mongoHost string = mongo.outputs.host
@description('<SVC>_MONGO__URL of package and dronescheduler.')
output mongoUrl string = mongo.outputs.url

@description('The notifier chart\'s NOTIFIER_EMAIL__ACS_ENDPOINT and NOTIFIER_SMS__ACS_ENDPOINT.')
output acsEndpoint string = communication.outputs.endpoint

@description('The notifier chart\'s NOTIFIER_EMAIL__SENDER domain (DoNotReply@<this>).')
output acsSenderDomain string = communication.outputs.senderDomain

@description('keyVault.name of every chart.')
output keyVaultName string = keyVault.outputs.name
output keyVaultUri string = keyVault.outputs.uri
@description('keyVault.secrets[].objectName of every chart.')
output appInsightsSecretName string = keyVault.outputs.appInsightsSecretName

@description('networkPolicy.gateway.cidrs of ingestion and delivery.')
output agcSubnetPrefix string = spoke.outputs.agcSubnetPrefix
@description('Subnet to associate the ApplicationLoadBalancer (infra/k8s/gateway.yaml) with.')
output agcSubnetId string = spoke.outputs.agcSubnetId
@description('Where the private endpoints live (networkPolicy.egress.azure.cidrs can narrow to it).')
output privateEndpointsSubnetPrefix string = spoke.outputs.privateEndpointsSubnetPrefix

output ingestionClientId string = identityByName.ingestion.clientId
output deliveryClientId string = identityByName.delivery.clientId
output packageClientId string = identityByName.package.clientId
output droneschedulerClientId string = identityByName.dronescheduler.clientId
output workflowClientId string = identityByName.workflow.clientId
output simulatorClientId string = identityByName.simulator.clientId
output notifierClientId string = identityByName.notifier.clientId
output webappClientId string = identityByName.webapp.clientId
@description('The workflow chart\'s keda.identityId.')
output kedaClientId string = identityByName[kedaIdentityName].clientId
@description('The ALB controller Helm chart\'s albController.podIdentity.clientID.')
output albControllerClientId string = identityByName.albcontroller.clientId

@description('The data of the ConfigMap flux-system/cluster-settings (infra/gitops/clusters/<env>/cluster-settings.yaml).')
output clusterSettings object = {
  PUBLIC_API_APP_ID: apiAppIds.public
  DELIVERY_API_APP_ID: apiAppIds.delivery
  PACKAGE_API_APP_ID: apiAppIds.package
  DRONESCHEDULER_API_APP_ID: apiAppIds.dronescheduler
  SIMULATOR_API_APP_ID: apiAppIds.simulator
  NOTIFIER_API_APP_ID: apiAppIds.notifier
  WEBAPP_APP_ID: apiAppIds.webapp
  AZURE_TENANT_ID: tenant().tenantId
  INGESTION_CLIENT_ID: identityByName.ingestion.clientId
  DELIVERY_CLIENT_ID: identityByName.delivery.clientId
  PACKAGE_CLIENT_ID: identityByName.package.clientId
  DRONESCHEDULER_CLIENT_ID: identityByName.dronescheduler.clientId
  WORKFLOW_CLIENT_ID: identityByName.workflow.clientId
  SIMULATOR_CLIENT_ID: identityByName.simulator.clientId
  NOTIFIER_CLIENT_ID: identityByName.notifier.clientId
  WEBAPP_CLIENT_ID: identityByName.webapp.clientId
  KEDA_CLIENT_ID: identityByName[kedaIdentityName].clientId
}
