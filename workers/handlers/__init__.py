"""Built-in action handlers, one module per agent, all over the bundled sample instance.

``HANDLERS`` maps every action of ``orchestrator.catalog.ACTIONS`` to a function
``(ctx: ActionContext, instance: SampleInstance) -> dict``. Results are JSON-serialisable and compact
(lists capped, totals given); bad parameters and unknown ids raise ``TaskInvalidError``.
"""

from __future__ import annotations

from workers.handlers import asset, audit, cmdb, cmdb_reads, csa, discovery, documentation
from workers.handlers.common import Handler

HANDLERS: dict[str, Handler] = {
    **cmdb.HANDLERS,
    **cmdb_reads.HANDLERS,
    **discovery.HANDLERS,
    **asset.HANDLERS,
    **csa.HANDLERS,
    **audit.HANDLERS,
    **documentation.HANDLERS,
}

__all__ = ["HANDLERS", "Handler"]
