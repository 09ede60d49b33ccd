// Key Vault: RBAC authorisation, soft delete and purge protection. Holds the OAuth tokens the
// app writes at run time and the secrets app settings reference (never a plain app setting).
param name string
param location string
param tags object
@secure()
param medisanteApiKeyHashes string
@secure()
param withingsClientSecret string
param publicNetworkAccess string

var medisanteSecretName = 'medisante-api-key-hashes'
var withingsSecretName = 'withings-client-secret'
var withingsSecret = empty(withingsClientSecret) ? [] : [{ name: withingsSecretName, value: withingsClientSecret }]

module vault 'br/public:avm/res/key-vault/vault:0.13.3' = {
  name: 'key-vault'
  params: {
    name: name
    location: location
    tags: tags
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enableVaultForDeployment: false
    enableVaultForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: publicNetworkAccess == 'Disabled' ? 'Deny' : 'Allow'
    }
    secrets: concat([
      {
        name: medisanteSecretName
        value: medisanteApiKeyHashes
        contentType: 'comma-separated SHA-256 hex digests'
      }
    ], withingsSecret)
  }
}

output name string = vault.outputs.name
output resourceId string = vault.outputs.resourceId
output uri string = vault.outputs.uri
output medisanteSecretName string = medisanteSecretName
output withingsSecretName string = withingsSecretName
