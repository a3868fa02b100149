"""The ASGI app for uvicorn workers (`loyalty serve`)."""

from loyalty.app import create_app

app = create_app()
