"""API keys: created by the CLI, stored hashed, with roles admin, store and readonly."""
