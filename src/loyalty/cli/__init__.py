"""The `loyalty` command line."""
