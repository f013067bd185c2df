"""Live alerts: the bus between processes, the per-process hub, and the events they carry.

Publishers (the worker after its transaction commits, the status API after its commit) call
:func:`publish_alert_events`; each API process runs one :class:`LiveHub` that takes events off
the bus and fans them out to its WebSocket and SSE clients (``sigwatch.api.routes.live``).
"""

from sigwatch.live.bus import LiveBus, MemoryBus, RedisBus, create_bus
from sigwatch.live.events import alert_event, load_alert_events, publish_alert_events
from sigwatch.live.hub import LiveClient, LiveFilters, LiveHub, Viewer

__all__ = [
    "LiveBus",
    "LiveClient",
    "LiveFilters",
    "LiveHub",
    "MemoryBus",
    "RedisBus",
    "Viewer",
    "alert_event",
    "create_bus",
    "load_alert_events",
    "publish_alert_events",
]
