"""The HTTP transport: FastAPI app, `/ask` (JSON and Server-Sent Events), REST and the web chat page.

`vinbot api` calls `api.app.serve(settings, host, port)`; tests and other servers use
`api.app.create_app(settings)`.
"""
