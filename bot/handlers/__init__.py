"""finbot handlers."""
