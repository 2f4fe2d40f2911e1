"""finbot handoff."""
