// Optional private networking (vnetEnabled): the app's outbound traffic goes through a VNet,
// and every dependency is reached by a private endpoint with its private DNS zone.
param name string
param location string
param tags object
param storageAccountId string
param cosmosAccountId string
param keyVaultId string
param fhirWorkspaceId string

var endpoints = [
  { name: 'blob', resourceId: storageAccountId, groupId: 'blob', zones: ['privatelink.blob.${environment().suffixes.storage}'] }
  { name: 'queue', resourceId: storageAccountId, groupId: 'queue', zones: ['privatelink.queue.${environment().suffixes.storage}'] }
  { name: 'cosmos', resourceId: cosmosAccountId, groupId: 'Sql', zones: ['privatelink.documents.azure.com'] }
  { name: 'vault', resourceId: keyVaultId, groupId: 'vault', zones: ['privatelink.vaultcore.azure.net'] }
  {
    name: 'fhir'
    resourceId: fhirWorkspaceId
    groupId: 'healthcareworkspace'
    zones: ['privatelink.azurehealthcareapis.com', 'privatelink.fhir.azurehealthcareapis.com']
  }
]
var zoneNames = flatten(map(endpoints, e => e.zones))

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: { addressPrefixes: ['10.40.0.0/16'] }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: '10.40.1.0/24'
          delegations: [{ name: 'flex', properties: { serviceName: 'Microsoft.App/environments' } }]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: '10.40.2.0/24'
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for zone in zoneNames: {
  name: zone
  location: 'global'
  tags: tags
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (zone, i) in zoneNames: {
  parent: zones[i]
  name: '${name}-link'
  location: 'global'
  properties: {
    virtualNetwork: { id: vnet.id }
    registrationEnabled: false
  }
}]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [for endpoint in endpoints: {
  name: 'pe-${endpoint.name}-${name}'
  location: location
  tags: tags
  properties: {
    subnet: { id: '${vnet.id}/subnets/private-endpoints' }
    privateLinkServiceConnections: [
      {
        name: endpoint.name
        properties: {
          privateLinkServiceId: endpoint.resourceId
          groupIds: [endpoint.groupId]
        }
      }
    ]
  }
}]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [for (endpoint, i) in endpoints: {
  parent: privateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [for zone in endpoint.zones: {
      name: replace(zone, '.', '-')
      properties: { privateDnsZoneId: resourceId('Microsoft.Network/privateDnsZones', zone) }
    }]
  }
  dependsOn: [zones]
}]

output appSubnetId string = '${vnet.id}/subnets/app'
