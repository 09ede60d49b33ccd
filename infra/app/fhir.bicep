// Azure Health Data Services workspace + FHIR service (R4), Entra ID authentication against
// this tenant. The app writes with its identity ("FHIR Data Contributor", see rbac.bicep).
param workspaceName string
param fhirServiceName string
param location string
param tags object
param publicNetworkAccess string

var fhirUrl = 'https://${workspaceName}-${fhirServiceName}.fhir.azurehealthcareapis.com'

resource workspace 'Microsoft.HealthcareApis/workspaces@2024-03-31' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    publicNetworkAccess: publicNetworkAccess
  }
}

resource fhirService 'Microsoft.HealthcareApis/workspaces/fhirservices@2024-03-31' = {
  parent: workspace
  name: fhirServiceName
  location: location
  tags: tags
  kind: 'fhir-R4'
  properties: {
    authenticationConfiguration: {
      authority: '${environment().authentication.loginEndpoint}${tenant().tenantId}'
      audience: fhirUrl
      smartProxyEnabled: false
    }
    publicNetworkAccess: publicNetworkAccess
  }
}

output workspaceId string = workspace.id
output workspaceName string = workspace.name
output fhirServiceName string = fhirService.name
output fhirUrl string = fhirUrl
