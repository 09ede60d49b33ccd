// IoMT ingestion hub: everything `azd up` creates, in one resource group.
// Keyless by design: the function app reaches Storage, Cosmos DB, Key Vault and the FHIR
// service with one user-assigned managed identity; every role it holds is in app/rbac.bicep.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name: a short unique token for every resource name is derived from it.')
param environmentName string

@minLength(1)
@description('Region of every resource; must offer Flex Consumption and Azure Health Data Services.')
@metadata({ azd: { type: 'location' } })
param location string

@description('Entra ID app ID URI of the hub (audience of admin tokens), e.g. api://iomt-hub.')
param adminTokenAudience string

@description('Client id (application id) of that app registration: the audience of v2.0 admin tokens. Empty: only v1.0 tokens (audience = the app ID URI) are accepted.')
param adminTokenClientId string = ''

@description('App role an admin token must carry.')
param adminRole string = 'IoMT.Admin'

@description('App role of platform operators. Medical centres (tenants) are not deployed: after deployment an operator whose admin token also carries this role adds each one with POST /api/platform/tenants (or python -m shared.cli tenant create), gives it its Medisanté key digests and its admins (members), and may point it at its own FHIR service. With no tenant added, the deployment serves one, the default tenant.')
param platformRole string = 'IoMT.Platform'

@secure()
@description('Comma-separated SHA-256 hex digests of the accepted Medisanté x-api-key values (stored in Key Vault).')
param medisanteApiKeyHashes string

@secure()
@description('Withings OAuth client secret (stored in Key Vault); empty until the Withings connector is used.')
param withingsClientSecret string = ''

@description('Withings OAuth client id; empty until the Withings connector is used.')
param withingsClientId string = ''

@description('Cosmos DB capacity: serverless (pay per request, nothing at rest) or provisioned.')
@allowed(['serverless', 'provisioned'])
param cosmosCapacityMode string = 'serverless'

@description('Shared database throughput (RU/s) when cosmosCapacityMode is provisioned.')
param cosmosProvisionedThroughput int = 400

@description('Always-ready instances for the HTTP functions (webhooks); 0 keeps nothing running at rest.')
@minValue(0)
param alwaysReadyHttpInstances int = 0

@description('Private networking: VNet integration for the app and private endpoints for every dependency.')
param vnetEnabled bool = false

@description('Object id of a developer to grant the same data roles (for running locally against Azure); optional.')
param principalId string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = 'func-iomt-${resourceToken}'
var deploymentContainerName = 'app-package-${take(resourceToken, 12)}'
var cosmosDatabaseName = 'iomt-hub'

// Names the app uses; tests/test_infra.py checks them against the code.
var queueNames = ['raw-ingest', 'raw-ingest-poison', 'password-reset-outbox', 'withings-sync', 'withings-sync-poison']
var blobContainerNames = ['raw-payloads', 'rejected-records', 'locks']
var cosmosContainers = [
  { name: 'devices', partitionKey: '/id' }
  { name: 'consents', partitionKey: '/patientId' }
  { name: 'consent-audit', partitionKey: '/receiptId' }
  { name: 'parked-readings', partitionKey: '/receiptId' }
  { name: 'deletion-log', partitionKey: '/receiptId' }
  { name: 'users', partitionKey: '/id' }
  { name: 'sessions', partitionKey: '/id' }
  { name: 'throttle', partitionKey: '/id' }
  { name: 'withings', partitionKey: '/id' }
  { name: 'sync-cursors', partitionKey: '/id' }
  { name: 'tenants', partitionKey: '/id' }
  { name: 'held-records', partitionKey: '/tenantId' }
  { name: 'memberships', partitionKey: '/principal' }
  { name: 'partner-apps', partitionKey: '/id' }
  { name: 'partner-grants', partitionKey: '/id' }
  { name: 'partner-receipts', partitionKey: '/id' }
]

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-iomt-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
  }
}

module storage 'br/public:avm/res/storage/storage-account:0.26.2' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'stiomt${resourceToken}'
    location: location
    tags: tags
    skuName: 'Standard_LRS'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // identity only: no account key is ever used
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkAcls: vnetEnabled
      ? { defaultAction: 'Deny', bypass: 'None' }
      : { defaultAction: 'Allow', bypass: 'AzureServices' }
    blobServices: {
      containers: [for name in concat([deploymentContainerName], blobContainerNames): { name: name }]
    }
    queueServices: {
      queues: [for name in queueNames: { name: name }]
    }
  }
}

module cosmos 'app/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    name: 'cosmos-iomt-${resourceToken}'
    location: location
    tags: tags
    databaseName: cosmosDatabaseName
    containers: cosmosContainers
    capacityMode: cosmosCapacityMode
    provisionedThroughput: cosmosProvisionedThroughput
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-iomt-${take(resourceToken, 13)}'
    location: location
    tags: tags
    medisanteApiKeyHashes: medisanteApiKeyHashes
    withingsClientSecret: withingsClientSecret
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
  }
}

module fhir 'app/fhir.bicep' = {
  name: 'fhir'
  scope: rg
  params: {
    workspaceName: 'hdsiomt${take(resourceToken, 12)}'
    fhirServiceName: 'fhir'
    location: location
    tags: tags
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
  }
}

module network 'app/network.bicep' = if (vnetEnabled) {
  name: 'network'
  scope: rg
  params: {
    name: 'vnet-iomt-${resourceToken}'
    location: location
    tags: tags
    storageAccountId: storage.outputs.resourceId
    cosmosAccountId: cosmos.outputs.resourceId
    keyVaultId: keyVault.outputs.resourceId
    fhirWorkspaceId: fhir.outputs.workspaceId
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: functionAppName
    location: location
    tags: tags
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
    subnetId: vnetEnabled ? network!.outputs.appSubnetId : ''
    appSettings: union(empty(withingsClientSecret) ? {} : {
      WITHINGS_CLIENT_ID: withingsClientId
      WITHINGS_PUBLIC_BASE_URL: 'https://${functionAppName}.azurewebsites.net'
      WITHINGS_CLIENT_SECRET: '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=${keyVault.outputs.withingsSecretName})'
    }, {
      HUB_ENV: 'azure'
      AZURE_CLIENT_ID: identity.outputs.clientId
      AzureWebJobsStorage__accountName: storage.outputs.name
      COSMOS_ENDPOINT: cosmos.outputs.endpoint
      COSMOS_DATABASE: cosmosDatabaseName
      FHIR_URL: fhir.outputs.fhirUrl
      FHIR_AUDIENCE: fhir.outputs.fhirUrl
      KEYVAULT_URL: keyVault.outputs.uri
      // A Key Vault reference: the digests never sit in the app's configuration.
      MEDISANTE_API_KEY_HASHES: '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=${keyVault.outputs.medisanteSecretName})'
      ADMIN_TOKEN_ISSUER: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
      // The tenant's v1.0 issuer (https://sts.windows.net/<tenant>/) is derived from this one.
      ADMIN_TOKEN_AUDIENCE: adminTokenAudience
      ADMIN_TOKEN_CLIENT_ID: adminTokenClientId
      ADMIN_ROLE: adminRole
      PLATFORM_ROLE: platformRole
    })
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    developerPrincipalId: principalId
    storageAccountName: storage.outputs.name
    cosmosAccountName: cosmos.outputs.name
    keyVaultName: keyVault.outputs.name
    fhirWorkspaceName: fhir.outputs.workspaceName
    fhirServiceName: fhir.outputs.fhirServiceName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

// Read by azd (service deployment) and by infra/scripts/write_local_settings.py.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output COSMOS_DATABASE string = cosmosDatabaseName
output FHIR_URL string = fhir.outputs.fhirUrl
output KEYVAULT_URL string = keyVault.outputs.uri
output ADMIN_TOKEN_ISSUER string = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
output ADMIN_TOKEN_AUDIENCE string = adminTokenAudience
output ADMIN_TOKEN_CLIENT_ID string = adminTokenClientId
output ADMIN_ROLE string = adminRole
output PLATFORM_ROLE string = platformRole
