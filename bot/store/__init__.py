"""All SQLAlchemy code of the bot: engine, models (one module per area), queries."""
