"""JSON routes of the agreement domain."""

from fastapi import APIRouter

from app.routing import TransactionalRoute

router = APIRouter(prefix="/api/v1", route_class=TransactionalRoute, tags=["agreement"])
