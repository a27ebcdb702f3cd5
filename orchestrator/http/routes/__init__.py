"""One router per resource; ``orchestrator.http.app`` includes them all.

Each router carries its full path (``/api/...``) rather than getting ``/api`` at include time, so a matched
route's ``path`` is the whole template (what the request metrics are labelled with).
"""

API_PREFIX = "/api"
