"""Run the Alembic migrations from code (the CLI, tests and the Fly release command)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from tools.storage.session import async_url


def alembic_config(url: str) -> Config:
    """Return an Alembic config that points at the bundled `migrations` package."""
    config = Config()
    import migrations  # the Alembic scripts ship as a package next to `tools`

    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision`."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database at `url` down to `revision`."""
    command.downgrade(alembic_config(url), revision)
