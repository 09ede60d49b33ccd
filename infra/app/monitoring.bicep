// Log Analytics + Application Insights; the app authenticates to ingestion with its identity
// (local auth disabled), see APPLICATIONINSIGHTS_AUTHENTICATION_STRING in function.bicep.
param location string
param tags object
param resourceToken string

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.11.1' = {
  name: 'log-analytics'
  params: {
    name: 'log-iomt-${resourceToken}'
    location: location
    tags: tags
    dataRetention: 30
  }
}

module applicationInsights 'br/public:avm/res/insights/component:0.6.0' = {
  name: 'application-insights'
  params: {
    name: 'appi-iomt-${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true
  }
}

output applicationInsightsName string = applicationInsights.outputs.name
