// Service Bus namespace and the queue `deliveryrequests` between ingestion and the workflow.
// Local (SAS) authentication is disabled: every client signs in with Microsoft Entra ID, and the
// data roles are granted on the queue, not on the namespace.

param location string

@description('Globally unique: sb-<prefix>-<env>; the charts\' <SVC>_QUEUE__SERVICEBUS_NAMESPACE is <name>.servicebus.windows.net.')
param name string

@description('Premium: private endpoint, isolated capacity, availability zones. Standard: public endpoint only.')
@allowed(['Standard', 'Premium'])
param sku string = 'Premium'

@description('Messaging units (Premium only).')
@allowed([1, 2, 4, 8, 16])
param premiumCapacity int = 1

@description('Public endpoint. Premium with a private endpoint: Disabled. Standard cannot disable it (no private endpoints): keep Enabled.')
@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string = 'Disabled'

param queueName string = 'deliveryrequests'

@description('Peek-lock duration. The workflow renews locks while it works (AutoLockRenewer), so a short lock only shortens redelivery after a crash. Matches the workflow\'s lock_duration default (30 s).')
param lockDuration string = 'PT30S'

@description('Deliveries before the broker dead-letters a message (the workflow abandons transient failures for redelivery). Matches the workflow\'s max_delivery_count default.')
@minValue(1)
param maxDeliveryCount int = 10

@description('Window in which a repeated messageId is dropped: ingestion derives messageId from (deliveryId, operation, request), so a client retry within it enqueues nothing new.')
param duplicateDetectionWindow string = 'PT10M'

@description('How long an unprocessed message stays before it expires to the dead-letter queue.')
param messageTimeToLive string = 'P14D'

@description('Object ids allowed to send: Azure Service Bus Data Sender on the queue (ingestion; the workflow, which replays dead letters).')
param senderPrincipalIds array

@description('Object ids allowed to receive: Azure Service Bus Data Receiver on the queue (the workflow).')
param receiverPrincipalIds array

@description('Object ids that read the queue\'s runtime properties: Azure Service Bus Data Owner on the queue (KEDA\'s identity: the message count needs the Manage right; no narrower built-in role has it).')
param queueOwnerPrincipalIds array

param tags object = {}

var roles = {
  dataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  dataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  dataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419'
}

var premium = sku == 'Premium'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
    tier: sku
    capacity: premium ? premiumCapacity : null
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: premium ? publicNetworkAccess : 'Enabled'
    zoneRedundant: premium
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: queueName
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    defaultMessageTimeToLive: messageTimeToLive
    deadLetteringOnMessageExpiration: true
    requiresSession: false
    enableBatchedOperations: true
    maxSizeInMegabytes: 5120
  }
}

var grants = concat(
  map(senderPrincipalIds, p => { principalId: p, role: roles.dataSender, what: 'send to' }),
  map(receiverPrincipalIds, p => { principalId: p, role: roles.dataReceiver, what: 'receive from' }),
  map(queueOwnerPrincipalIds, p => { principalId: p, role: roles.dataOwner, what: 'read the message count of' })
)

resource queueRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for grant in grants: {
    scope: queue
    name: guid(queue.id, grant.principalId, grant.role)
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
      principalId: grant.principalId
      principalType: 'ServicePrincipal'
      description: 'Workload identity: ${grant.what} ${queueName}'
    }
  }
]

output id string = namespace.id
output name string = namespace.name
output fqdn string = '${namespace.name}.servicebus.windows.net'
output queueName string = queue.name
