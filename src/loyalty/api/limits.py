"""Bounds on what clients send, so out-of-range values are a 422 and never reach the database."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# Ids are signed 64-bit in the database; a larger number is a client error, not a server one.
MAX_ID = 2**63 - 1

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
