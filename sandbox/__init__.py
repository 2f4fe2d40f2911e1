"""The sandbox platform: a reference implementation of backend_client/openapi.yaml."""
