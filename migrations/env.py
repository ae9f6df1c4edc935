import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

from autocheckin.database import statements_unbounded, writer_gate_held

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def render_item(type_, obj, autogen_context):
    """Render our UTC column type as the plain SQLAlchemy type it stores."""
    from autocheckin.database import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def get_engine():
    return current_app.extensions["migrate"].db.engine


def get_engine_url():
    try:
        return get_engine().url.render_as_string(hide_password=False).replace("%", "%%")
    except AttributeError:
        return str(get_engine().url).replace("%", "%%")


# add your model's MetaData object here
# for 'autogenerate' support
# from myapp import mymodel
# target_metadata = mymodel.Base.metadata
config.set_main_option("sqlalchemy.url", get_engine_url())
target_db = current_app.extensions["migrate"].db

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


def get_metadata():
    if hasattr(target_db, "metadatas"):
        return target_db.metadatas[None]
    return target_db.metadata


def run_migrations_offline():
    """Run migrations in 'offline' mode.

    This configures the context with just a URL
    and not an Engine, though an Engine is acceptable
    here as well.  By skipping the Engine creation
    we don't even need a DBAPI to be available.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=get_metadata(), literal_binds=True)

    with context.begin_transaction():
        context.run_migrations()


# Any fixed bigint, the same for every process of this app: "autock" in hex.
MIGRATION_LOCK_KEY = 0x6175746F636B


def run_migrations_online():
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = current_app.extensions["migrate"].configure_args
    conf_args.setdefault("render_item", render_item)
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives

    connectable = get_engine()

    # SQLite: several `flask db upgrade` at once queue on the app's writer lock file (one
    # migrates, the others then find the schema at head); PostgreSQL: the advisory lock below.
    with writer_gate_held(connectable), connectable.connect() as connection:
        is_sqlite = connection.dialect.name == "sqlite"
        if is_sqlite:
            # SQLite changes a table by copying it and dropping the old one, and with foreign
            # keys on, that DROP deletes (cascades to) every row that points at it: a
            # migration would empty `attendances` by recreating `students`. The pragma is a
            # no-op inside a transaction, so it is set on the driver's connection before
            # Alembic begins one, and turned back on (and checked) after.
            _sqlite_foreign_keys(connection, on=False)
        serialized = connection.dialect.name == "postgresql"
        # No statement or lock timeout (DATABASE_STATEMENT_TIMEOUT, _LOCK_TIMEOUT): copying a
        # large table, or waiting below for another replica's migration, takes what it takes.
        with statements_unbounded(connection):
            if serialized:
                # Several replicas start at once on a fresh database: one upgrades, the others
                # wait here, then find the schema at head and do nothing. A session-level
                # lock, kept across the migration's own transaction.
                connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
                connection.commit()
            try:
                context.configure(
                    connection=connection, target_metadata=get_metadata(), **conf_args
                )
                with context.begin_transaction():
                    context.run_migrations()
            finally:
                if serialized:
                    connection.rollback()
                    connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
                    connection.commit()
                if is_sqlite:
                    connection.rollback()
                    _sqlite_foreign_keys(connection, on=True)


def _sqlite_foreign_keys(connection, *, on):
    """Set SQLite's foreign_keys pragma outside any transaction; when turning it back on,
    refuse a migration that left a row pointing nowhere."""
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")
        if on:
            dangling = cursor.execute("PRAGMA foreign_key_check").fetchall()
            if dangling:
                raise RuntimeError(f"the migration left rows pointing nowhere: {dangling[:5]}")
    finally:
        cursor.close()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
