// The function app on the Flex Consumption plan (Linux, Python 3.11), running as the
// user-assigned identity: Storage by identity (no AzureWebJobsStorage connection string),
// Application Insights by identity, Key Vault references resolved with the same identity.
param name string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param alwaysReadyHttpInstances int
param subnetId string
@description('The app\'s own settings (read by shared/settings.py).')
param appSettings object

param instanceMemoryMB int = 2048
param maximumInstanceCount int = 100

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

module plan 'br/public:avm/res/web/serverfarm:0.4.1' = {
  name: 'flex-plan'
  params: {
    name: 'plan-${name}'
    location: location
    tags: tags
    skuName: 'FC1'
    reserved: true
  }
}

// Settings of the Functions host itself (not read by the app): identity-based storage and
// monitoring connections.
var hostSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

module site 'br/public:avm/res/web/site:0.15.1' = {
  name: 'function-app'
  params: {
    kind: 'functionapp,linux'
    name: name
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    serverFarmResourceId: plan.outputs.resourceId
    managedIdentities: {
      systemAssigned: false
      userAssignedResourceIds: [identityId]
    }
    keyVaultAccessIdentityResourceId: identityId
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: alwaysReadyHttpInstances > 0 ? [{ name: 'http', instanceCount: alwaysReadyHttpInstances }] : []
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      alwaysOn: false
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    virtualNetworkSubnetId: !empty(subnetId) ? subnetId : null
    appSettingsKeyValuePairs: union(appSettings, hostSettings)
  }
}

output name string = site.outputs.name
