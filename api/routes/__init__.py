"""The routers of the HTTP API; each one parses, calls one function and renders."""
