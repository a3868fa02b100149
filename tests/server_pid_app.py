"""A tiny ASGI app for tests/test_server.py: answers the process id of the worker that served it."""

from __future__ import annotations

import os

from fastapi import FastAPI

app = FastAPI()


@app.get("/pid")
def pid() -> dict[str, int]:
    return {"pid": os.getpid()}
