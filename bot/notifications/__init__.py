"""Status notifications: signed platform events in, rate-limited messages out."""
