"""Dynamic Resource Allocation: the CEL environment of device selectors and the structured
allocator (upstream k8s.io/dynamic-resource-allocation), used by the DynamicResources plugin."""
