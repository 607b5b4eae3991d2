"""Built-in checks, one module per dependency (registered as entry points)."""
