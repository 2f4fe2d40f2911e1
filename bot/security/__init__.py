"""finbot security."""
