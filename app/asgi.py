"""The ASGI application object for uvicorn workers."""

from app.main import create_app

app = create_app()
