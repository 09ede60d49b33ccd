"""The local stack: stand-ins for the Azure services, vendor simulators and the local Functions host."""
