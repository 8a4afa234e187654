"""HTTP adapter: the FastAPI application, its schemas, errors and middleware."""
