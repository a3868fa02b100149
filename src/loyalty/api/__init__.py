"""The versioned HTTP API: /v1 router assembly, auth dependencies, problem responses."""
