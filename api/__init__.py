"""The FastAPI app: thin routers, the services they call, request and response schemas."""
