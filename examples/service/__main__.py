"""Run the service: ``python -m examples.service`` (SQLite under ./data by default).

``SERVICE_HOST`` / ``SERVICE_PORT`` say where it listens; ``COMMERCE_PERSISTENCE=postgres``
with eventsourcing's ``POSTGRES_*`` keys puts its events in PostgreSQL (``=redis`` with
``REDIS_URL``: in Redis), and ``COMMERCE_MESSAGING=redis`` publishes its integration events
to Redis Streams.
"""

from __future__ import annotations

import uvicorn

from examples.service.app import create_app
from examples.service.config import ServiceConfig
from examples.service.observability import configure_logging


def main() -> None:
    """Configure logging and serve until interrupted."""
    config = ServiceConfig.from_env()
    configure_logging(config.log_level)
    uvicorn.run(
        create_app(),
        host=config.host,
        port=config.port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
