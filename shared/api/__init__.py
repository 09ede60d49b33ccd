"""HTTP, queue and timer adapters: one blueprint per area, thin over the domain code."""
