"""One router module per resource; ``health`` also serves the Prometheus metrics.

Each router carries its full path prefix itself, so a matched route's template is the whole path
(``/api/v1/sources/{source_id}``), as metrics label it.
"""

API_PREFIX = "/api/v1"
