"""finbot notifications."""
