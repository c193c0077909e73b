"""Plot helpers called by the CLI (matplotlib lives only here)."""
