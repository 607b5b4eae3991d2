"""PostgreSQL: the API and Worker databases and the custom-layers source database."""
