"""Framework adapters: asgi, fastapi, django, drf, flask. Each imports its framework lazily."""
