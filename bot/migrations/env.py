"""Alembic environment: migrates the database named by the caller or by DATABASE_URL."""
from alembic import context

from bot.storage import Base, database_url, engine

url = context.config.attributes.get("url") or database_url()

with engine(url).connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
