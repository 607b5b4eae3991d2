"""What each CLI command does, one module per command, as plain functions over plain data."""
