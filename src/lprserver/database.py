"""The database's schema: Alembic migrations (README "Upgrade"; `flask lpr init-db` runs them)."""

import logging

from . import ROOT


def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to the current schema (or `revision`) with Alembic (`alembic upgrade`)."""
    # Alembic says "setup plugin ..." for each plugin as it is imported: one line each otherwise.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    from alembic import command  # imported here: only migrating needs Alembic
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    command.upgrade(config, revision)
