"""The ASGI application: JSON API (OpenAPI), the live stream, later the console."""
