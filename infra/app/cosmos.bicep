// Cosmos DB for NoSQL: serverless by default (nothing billed at rest but storage), keys disabled
// (data-plane access only by Cosmos SQL role assignment, see rbac.bicep).
param name string
param location string
param tags object
param databaseName string
@description('[{ name, partitionKey }]: the containers the app uses (shared/names.py).')
param containers array
@allowed(['serverless', 'provisioned'])
param capacityMode string
param provisionedThroughput int
param publicNetworkAccess string

module account 'br/public:avm/res/document-db/database-account:0.15.1' = {
  name: 'cosmos-account'
  params: {
    name: name
    location: location
    tags: tags
    zoneRedundant: false
    capabilitiesToAdd: capacityMode == 'serverless' ? ['EnableServerless'] : []
    disableKeyBasedMetadataWriteAccess: true
    disableLocalAuthentication: true
    minimumTlsVersion: 'Tls12'
    networkRestrictions: {
      publicNetworkAccess: publicNetworkAccess
      ipRules: []
      virtualNetworkRules: []
    }
    sqlDatabases: [
      {
        name: databaseName
        throughput: capacityMode == 'provisioned' ? provisionedThroughput : null
        containers: [for container in containers: {
          name: container.name
          paths: [container.partitionKey]
        }]
      }
    ]
  }
}

output name string = account.outputs.name
output resourceId string = account.outputs.resourceId
output endpoint string = account.outputs.endpoint
