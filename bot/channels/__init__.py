"""finbot channels."""
