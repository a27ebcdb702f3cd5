"""``GET /metrics``: Prometheus text. Bearer-protected like the API (configure the scraper with a token:
``authorization: {type: Bearer, credentials: <token>}``); a viewer token is enough."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from orchestrator.http.deps import AUTHENTICATED, ServiceDep
from orchestrator.metrics import prometheus as metrics

router = APIRouter(tags=["system"], dependencies=AUTHENTICATED)


@router.get(
    "/metrics",
    summary="Prometheus metrics (bearer token required)",
    response_class=Response,
    responses={200: {"content": {metrics.CONTENT_TYPE: {}}}},
)
def prometheus_metrics(service: ServiceDep) -> Response:
    return Response(metrics.render(service), media_type=metrics.CONTENT_TYPE)
