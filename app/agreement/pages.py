"""HTML routes of the agreement domain."""

from fastapi import APIRouter, Depends

from app.accounts.dependencies import verify_csrf
from app.routing import TransactionalRoute

router = APIRouter(route_class=TransactionalRoute, include_in_schema=False, dependencies=[Depends(verify_csrf)])
