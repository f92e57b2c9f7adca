// Azure Communication Services for the notifier: e-mail through an Email Communication Service
// with an Azure-managed domain (DoNotReply@<guid>.azurecomm.net, no DNS to verify) linked to the
// Communication Services resource, and SMS from a number acquired on that resource afterwards
// (numbers are bought, not declared: infra/README.md). The notifier signs in with its workload
// identity, which holds "Communication and Email Service Owner" on the Communication Services
// resource; the resource's access keys are never read by anything here and never output.

@description('Communication Services resource: acs-<prefix>-<env>, the charts\' NOTIFIER_EMAIL__ACS_ENDPOINT host.')
param name string

@description('Email Communication Service: acs-email-<prefix>-<env>.')
param emailServiceName string

@description('Where ACS keeps its data at rest (a geography, not a region).')
param dataLocation string = 'United States'

@description('Object ids of the identities that send (the notifier).')
param senderPrincipalIds array

param tags object = {}

var roles = {
  communicationAndEmailServiceOwner: '09976791-48a7-449e-bb21-39d1a415f350'
}

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource managedDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource communication 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: name
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: [
      managedDomain.id
    ]
  }
}

resource senders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in senderPrincipalIds: {
    scope: communication
    name: guid(communication.id, principalId, roles.communicationAndEmailServiceOwner)
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.communicationAndEmailServiceOwner)
      principalId: principalId
      principalType: 'ServicePrincipal'
      description: 'Send notification e-mail and SMS with Microsoft Entra ID (no access keys)'
    }
  }
]

@description('The charts\' NOTIFIER_EMAIL__ACS_ENDPOINT and NOTIFIER_SMS__ACS_ENDPOINT.')
output endpoint string = 'https://${communication.properties.hostName}'

@description('The sender domain: NOTIFIER_EMAIL__SENDER is DoNotReply@<this>.')
output senderDomain string = managedDomain.properties.mailFromSenderDomain

output name string = communication.name
