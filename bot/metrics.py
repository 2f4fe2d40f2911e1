"""Prometheus metrics of the bot process (one registry; areas increment these)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

TURNS = Counter("finbot_turns_total", "Customer messages handled", ["channel", "intent"], registry=REGISTRY)
TURN_SECONDS = Histogram(
    "finbot_turn_seconds", "Time to answer one customer message", ["channel"], registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
NLU_FAILURES = Counter("finbot_nlu_failures_total", "NLU calls that failed or timed out", registry=REGISTRY)
NLU_FALLBACKS = Counter("finbot_nlu_fallbacks_total", "Messages the NLU did not understand", registry=REGISTRY)
BACKEND_FAILURES = Counter("finbot_backend_failures_total", "Platform calls that failed", ["operation"], registry=REGISTRY)
EVENTS = Counter("finbot_platform_events_total", "Platform events received", ["type", "outcome"], registry=REGISTRY)
OUTBOX_SENT = Counter("finbot_outbox_sent_total", "Outbox messages delivered", ["channel"], registry=REGISTRY)
OUTBOX_FAILED = Counter("finbot_outbox_failed_total", "Outbox delivery attempts that failed", ["channel", "reason"], registry=REGISTRY)
OUTBOX_PENDING = Gauge("finbot_outbox_pending", "Outbox messages waiting", registry=REGISTRY)
HANDOFFS = Counter("finbot_handoffs_total", "Handoff tickets opened", ["reason"], registry=REGISTRY)
