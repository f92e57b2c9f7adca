// The AKS cluster: Microsoft Entra ID + Azure RBAC, no local accounts, OIDC issuer and workload
// identity, the KEDA and Key Vault Secrets Store CSI add-ons, Azure CNI Overlay with the Cilium
// dataplane and network policy, a system pool kept for critical add-ons and an autoscaled user
// pool, both spread over availability zones, automatic upgrades inside a maintenance window.

param location string

param clusterName string

@description('Resource group AKS creates for the nodes (and where the ALB controller creates Application Gateway for Containers). A fixed name, so role assignments can target it.')
param nodeResourceGroupName string

@description('Kubernetes version; empty: the default version of the region (the auto-upgrade channel keeps it current).')
param kubernetesVersion string = ''

@description('Resource id of the node subnet (spoke VNet).')
param nodeSubnetId string

@description('Name of the spoke VNet and of the node subnet (for the control plane identity\'s role).')
param vnetName string
param nodeSubnetName string

@description('Entra ID group whose members administer the cluster (Azure RBAC cluster admin).')
param adminGroupObjectId string

@allowed(['Free', 'Standard', 'Premium'])
param skuTier string = 'Standard'

@description('Availability zones for both node pools; empty for a region without zones.')
param availabilityZones array = ['1', '2', '3']

param systemPool object = {
  vmSize: 'Standard_D4ds_v5'
  minCount: 2
  maxCount: 3
  osDiskSizeGB: 128
}

param userPool object = {
  vmSize: 'Standard_D4ds_v5'
  minCount: 2
  maxCount: 10
  osDiskSizeGB: 128
}

@description('Overlay pod CIDR: must not overlap the VNets (or anything they are peered or connected to).')
param podCidr string = '10.244.0.0/16'

@description('Kubernetes service CIDR: must not overlap the VNets or the pod CIDR.')
param serviceCidr string = '172.16.0.0/16'

@description('kube-dns service address, inside serviceCidr.')
param dnsServiceIP string = '172.16.0.10'

@description('CIDRs allowed to reach the public API server; empty: any (Entra ID still guards it). Ignored for a private cluster.')
param apiServerAuthorizedIpRanges array = []

@description('Private API server (reachable only from the VNet and peered networks): Flux works unchanged (it pulls), people need a jump host, VPN or `az aks command invoke`.')
param enablePrivateCluster bool = false

@allowed(['rapid', 'stable', 'patch', 'node-image', 'none'])
param upgradeChannel string = 'stable'

@allowed(['NodeImage', 'SecurityPatch', 'Unmanaged', 'None'])
param nodeOsUpgradeChannel string = 'NodeImage'

@description('Log Analytics workspace for Container Insights, Defender and the control plane logs.')
param logAnalyticsWorkspaceId string

@description('Container Insights (logs and inventory, managed identity auth through a data collection rule).')
param enableContainerInsights bool = true

@description('Microsoft Defender for Containers sensor (needs the Defender plan on the subscription).')
param enableDefender bool = false

param tags object = {}

var roles = {
  networkContributor: '4d97b98b-1d4f-4787-a291-c67834d212e7'
  aksRbacClusterAdmin: 'b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b'
}

// Control plane identity, created before the cluster so it holds its network role in time (a
// system-assigned identity would only exist once the cluster does).
resource controlPlaneIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: 'id-${clusterName}-control-plane'
  location: location
  tags: tags
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-07-01' existing = {
  name: vnetName
}

resource nodeSubnet 'Microsoft.Network/virtualNetworks/subnets@2024-07-01' existing = {
  parent: vnet
  name: nodeSubnetName
}

// AKS joins the node NICs and internal load balancers to the subnet.
resource controlPlaneSubnetRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: nodeSubnet
  name: guid(nodeSubnet.id, controlPlaneIdentity.id, roles.networkContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.networkContributor)
    principalId: controlPlaneIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'AKS control plane: join nodes and load balancers to the node subnet'
  }
}

var commonPoolProfile = {
  type: 'VirtualMachineScaleSets'
  osType: 'Linux'
  osSKU: 'AzureLinux'
  // Ephemeral OS disks live on the VM's local storage: faster node start and reimage, no disk cost.
  // osDiskSizeGB must fit the size's cache/temp disk (D4ds_v5: 150 GiB).
  osDiskType: 'Ephemeral'
  vnetSubnetID: nodeSubnetId
  availabilityZones: empty(availabilityZones) ? null : availabilityZones
  enableAutoScaling: true
  maxPods: 110
  upgradeSettings: {
    maxSurge: '33%'
  }
}

resource cluster 'Microsoft.ContainerService/managedClusters@2025-10-01' = {
  name: clusterName
  location: location
  tags: tags
  sku: {
    name: 'Base'
    tier: skuTier
  }
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${controlPlaneIdentity.id}': {}
    }
  }
  properties: {
    kubernetesVersion: empty(kubernetesVersion) ? null : kubernetesVersion
    dnsPrefix: clusterName
    nodeResourceGroup: nodeResourceGroupName
    enableRBAC: true
    // Entra ID sign-in with Azure RBAC for Kubernetes authorization; no static credentials.
    aadProfile: {
      managed: true
      enableAzureRBAC: true
      tenantID: tenant().tenantId
      adminGroupObjectIDs: [adminGroupObjectId]
    }
    disableLocalAccounts: true
    oidcIssuerProfile: {
      enabled: true
    }
    securityProfile: {
      workloadIdentity: {
        enabled: true
      }
      imageCleaner: {
        enabled: true
        intervalHours: 168
      }
      defender: enableDefender
        ? {
            logAnalyticsWorkspaceResourceId: logAnalyticsWorkspaceId
            securityMonitoring: {
              enabled: true
            }
          }
        : null
    }
    // KEDA add-on: the workflow's ScaledObject (azure-servicebus trigger, azure-workload identity).
    workloadAutoScalerProfile: {
      keda: {
        enabled: true
      }
    }
    addonProfiles: {
      // Secrets Store CSI driver + Azure Key Vault provider: the charts' SecretProviderClass.
      azureKeyvaultSecretsProvider: {
        enabled: true
        config: {
          enableSecretRotation: 'true'
          rotationPollInterval: '2m'
        }
      }
      azurepolicy: {
        enabled: true
      }
      omsagent: enableContainerInsights
        ? {
            enabled: true
            config: {
              logAnalyticsWorkspaceResourceID: logAnalyticsWorkspaceId
              useAADAuth: 'true'
            }
          }
        : {
            enabled: false
          }
    }
    networkProfile: {
      networkPlugin: 'azure'
      networkPluginMode: 'overlay'
      networkDataplane: 'cilium'
      networkPolicy: 'cilium'
      podCidr: podCidr
      serviceCidr: serviceCidr
      dnsServiceIP: dnsServiceIP
      loadBalancerSku: 'standard'
      outboundType: 'loadBalancer'
    }
    apiServerAccessProfile: {
      enablePrivateCluster: enablePrivateCluster
      authorizedIPRanges: enablePrivateCluster || empty(apiServerAuthorizedIpRanges) ? null : apiServerAuthorizedIpRanges
    }
    autoUpgradeProfile: {
      upgradeChannel: upgradeChannel
      nodeOSUpgradeChannel: nodeOsUpgradeChannel
    }
    agentPoolProfiles: [
      union(commonPoolProfile, {
        name: 'system'
        mode: 'System'
        vmSize: systemPool.vmSize
        osDiskSizeGB: systemPool.osDiskSizeGB
        count: systemPool.minCount
        minCount: systemPool.minCount
        maxCount: systemPool.maxCount
        // Only critical add-ons (CoreDNS, konnectivity, KEDA, CSI, metrics-server) run here.
        nodeTaints: ['CriticalAddonsOnly=true:NoSchedule']
      })
      union(commonPoolProfile, {
        name: 'user'
        mode: 'User'
        vmSize: userPool.vmSize
        osDiskSizeGB: userPool.osDiskSizeGB
        count: userPool.minCount
        minCount: userPool.minCount
        maxCount: userPool.maxCount
      })
    ]
    // Cluster autoscaler, for both pools. The charts' pods mount an emptyDir on /tmp, so nodes with
    // local storage must stay eligible for scale-down.
    autoScalerProfile: {
      'balance-similar-node-groups': 'true'
      expander: 'least-waste'
      'max-graceful-termination-sec': '600'
      'max-node-provision-time': '15m'
      'scale-down-delay-after-add': '10m'
      'scale-down-unneeded-time': '10m'
      'scale-down-utilization-threshold': '0.5'
      'scan-interval': '10s'
      'skip-nodes-with-local-storage': 'false'
      'skip-nodes-with-system-pods': 'true'
    }
    supportPlan: 'KubernetesOfficial'
  }
  dependsOn: [controlPlaneSubnetRole]
}

// Upgrades (Kubernetes and node images) only on Sunday nights, UTC.
resource autoUpgradeWindow 'Microsoft.ContainerService/managedClusters/maintenanceConfigurations@2025-10-01' = {
  parent: cluster
  name: 'aksManagedAutoUpgradeSchedule'
  properties: {
    maintenanceWindow: {
      schedule: {
        weekly: {
          intervalWeeks: 1
          dayOfWeek: 'Sunday'
        }
      }
      durationHours: 4
      startTime: '01:00'
      utcOffset: '+00:00'
    }
  }
}

resource nodeOsUpgradeWindow 'Microsoft.ContainerService/managedClusters/maintenanceConfigurations@2025-10-01' = {
  parent: cluster
  name: 'aksManagedNodeOSUpgradeSchedule'
  properties: {
    maintenanceWindow: {
      schedule: {
        weekly: {
          intervalWeeks: 1
          dayOfWeek: 'Sunday'
        }
      }
      durationHours: 4
      startTime: '01:00'
      utcOffset: '+00:00'
    }
  }
}

// The admin group is cluster admin through Azure RBAC (adminGroupObjectIDs alone only binds the
// Kubernetes cluster-admin role for non-Azure-RBAC clusters).
resource adminGroupClusterAdmin 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: cluster
  name: guid(cluster.id, adminGroupObjectId, roles.aksRbacClusterAdmin)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.aksRbacClusterAdmin)
    principalId: adminGroupObjectId
    principalType: 'Group'
    description: 'Platform administrators: Kubernetes cluster admin'
  }
}

// Container Insights with managed identity authentication reads what to collect from a data
// collection rule associated with the cluster.
resource containerInsightsDcr 'Microsoft.Insights/dataCollectionRules@2023-03-11' = if (enableContainerInsights) {
  name: 'MSCI-${location}-${clusterName}'
  location: location
  tags: tags
  kind: 'Linux'
  properties: {
    dataSources: {
      extensions: [
        {
          name: 'ContainerInsightsExtension'
          extensionName: 'ContainerInsights'
          streams: ['Microsoft-ContainerInsights-Group-Default']
          extensionSettings: {
            dataCollectionSettings: {
              interval: '1m'
              namespaceFilteringMode: 'Off'
              enableContainerLogV2: true
            }
          }
        }
      ]
    }
    destinations: {
      logAnalytics: [
        {
          name: 'ciworkspace'
          workspaceResourceId: logAnalyticsWorkspaceId
        }
      ]
    }
    dataFlows: [
      {
        streams: ['Microsoft-ContainerInsights-Group-Default']
        destinations: ['ciworkspace']
      }
    ]
  }
}

resource containerInsightsDcrAssociation 'Microsoft.Insights/dataCollectionRuleAssociations@2023-03-11' = if (enableContainerInsights) {
  scope: cluster
  name: 'ContainerInsightsExtension'
  properties: {
    dataCollectionRuleId: containerInsightsDcr.id
    description: 'Container Insights for ${clusterName}'
  }
}

// Control plane logs: the audit trail of every write and of Entra ID sign-ins (guard), and the
// autoscaler's decisions.
resource controlPlaneDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: cluster
  name: 'control-plane-to-log-analytics'
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'kube-audit-admin'
        enabled: true
      }
      {
        category: 'guard'
        enabled: true
      }
      {
        category: 'cluster-autoscaler'
        enabled: true
      }
    ]
  }
}

output name string = cluster.name
output id string = cluster.id
output oidcIssuerUrl string = cluster.properties.oidcIssuerProfile.issuerURL
output kubeletObjectId string = cluster.properties.identityProfile.kubeletidentity.objectId
output nodeResourceGroup string = cluster.properties.nodeResourceGroup
