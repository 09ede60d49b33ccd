// Every role assignment of the deployment, in one place. The app's identity gets exactly the
// data-plane roles it needs, each scoped to its one resource; nothing at resource-group scope.
param principalId string
@description('Optional developer object id: the same data roles, for running locally against Azure.')
param developerPrincipalId string = ''
param storageAccountName string
param cosmosAccountName string
param keyVaultName string
param fhirWorkspaceName string
param fhirServiceName string
param applicationInsightsName string

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner (host leases, raw payloads)
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7' // Key Vault Secrets Officer
  fhirDataContributor: '5a1fc7df-4bf1-4951-a576-89034ee01acd' // FHIR Data Contributor
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
}
// Cosmos DB Built-in Data Contributor (a Cosmos SQL role, not an Azure RBAC role)
var cosmosDataContributor = '00000000-0000-0000-0000-000000000002'

var principals = empty(developerPrincipalId)
  ? [{ id: principalId, type: 'ServicePrincipal' }]
  : [{ id: principalId, type: 'ServicePrincipal' }, { id: developerPrincipalId, type: 'User' }]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' existing = {
  name: cosmosAccountName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource fhirService 'Microsoft.HealthcareApis/workspaces/fhirservices@2024-03-31' existing = {
  name: '${fhirWorkspaceName}/${fhirServiceName}'
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Storage Blob Data Owner on the storage account
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for p in principals: {
  name: guid(storage.id, p.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: p.id
    principalType: p.type
  }
}]

// Storage Queue Data Contributor on the storage account
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for p in principals: {
  name: guid(storage.id, p.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: p.id
    principalType: p.type
  }
}]

// Key Vault Secrets Officer on the vault (tokens are written and rotated at run time)
resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for p in principals: {
  name: guid(keyVault.id, p.id, roles.keyVaultSecretsOfficer)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: p.id
    principalType: p.type
  }
}]

// FHIR Data Contributor on the FHIR service
resource fhirContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for p in principals: {
  name: guid(fhirService.id, p.id, roles.fhirDataContributor)
  scope: fhirService
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.fhirDataContributor)
    principalId: p.id
    principalType: p.type
  }
}]

// Monitoring Metrics Publisher on Application Insights (telemetry by identity)
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Cosmos DB Built-in Data Contributor on the account (Cosmos SQL role assignment)
resource cosmosContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = [for p in principals: {
  parent: cosmos
  name: guid(cosmos.id, p.id, cosmosDataContributor)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosDataContributor}'
    principalId: p.id
    scope: cosmos.id
  }
}]
