"""The one table: intent → handler (with its link and step-up needs), plus task definitions.

Each entry names its handler as ``"module:attribute"`` and is imported on first use, so an
area whose module is not there yet simply leaves its intents unanswered (the engine then
says what finbot can do) instead of breaking the import of everything.

For other areas:
- a handler is ``async def handle(turn: Turn, ctx: Context) -> Reply`` (bot/dialogue/types.py);
- ``needs_link``: the engine tells unlinked chats how to link before calling the handler;
- ``stepup``: an action of ``bot.security.stepup.POLICY`` ("view_history", ...). For a "view"
  action the engine asks for a code when the last verification is older than
  ``settings.stepup_view_minutes`` and calls the handler once it is verified;
- ``task``: ``"module:TASK"`` naming a ``bot.dialogue.tasks.TaskDef``; the engine runs it with
  the task driver (slot filling, quote, confirm, fresh code, execute once) instead of a handler;
- ``question``: True when the intent may be answered in the middle of a task, after which
  the task is resumed with a reminder (FAQ, balance, product list ...);
- a module may also export ``ROUTES: list[Route]`` to add or override its own entries
  without editing this file (see ``PLUGINS``).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

from bot.dialogue.tasks import TaskDef, register_task
from bot.dialogue.types import Handler

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    """How the engine runs one intent."""

    intent: str
    handler: str | None = None  # "bot.handlers.balance:handle"
    task: str | None = None  # "bot.handlers.buy:TASK"
    needs_link: bool = False
    stepup: str | None = None  # an action of bot.security.stepup.POLICY
    question: bool = False  # may be asked mid-task; the task resumes afterwards
    title: str | None = None  # locale key of the intent's short title (buttons)


TABLE: tuple[Route, ...] = (
    # --- engine area: money and account ---
    Route("check_balance", "bot.handlers.balance:handle", needs_link=True,
          stepup="view_balance", question=True),
    Route("buy_product", task="bot.handlers.buy:TASK", needs_link=True),
    Route("redeem_product", task="bot.handlers.redeem:TASK", needs_link=True),
    Route("link_account", "bot.handlers.link:handle"),
    Route("unlink_account", task="bot.handlers.link:UNLINK_TASK", needs_link=True),
    Route("my_data", "bot.handlers.link:my_data", stepup="view_my_data", question=True),
    Route("forget_me", task="bot.handlers.link:FORGET_TASK"),
    # --- smalltalk ---
    Route("greet", "bot.handlers.greet:handle", question=True),
    Route("help", "bot.handlers.greet:handle_help", question=True),
    Route("goodbye", "bot.handlers.smalltalk:goodbye", question=True),
    Route("thank", "bot.handlers.smalltalk:thank", question=True),
    Route("affirm", "bot.handlers.smalltalk:affirm"),
    Route("deny", "bot.handlers.smalltalk:deny"),
    Route("out_of_scope", "bot.handlers.smalltalk:out_of_scope", question=True),
    Route("menu", "bot.handlers.smalltalk:menu", question=True),
    # --- information handlers (another engineer's modules) ---
    Route("list_products", "bot.handlers.products:handle", question=True),
    Route("product_info", "bot.handlers.products:handle", question=True),
    Route("track_transaction", "bot.handlers.track:handle", needs_link=True,
          stepup="view_history", question=True),
    Route("transaction_history", "bot.handlers.history:handle", needs_link=True,
          stepup="view_history", question=True),
    Route("export_history", task="bot.handlers.history:EXPORT_TASK", needs_link=True),
    Route("file_complaint", task="bot.handlers.complaints:TASK", needs_link=True),
    Route("complaint_status", "bot.handlers.complaints:status", needs_link=True,
          stepup="view_complaints", question=True),
    Route("faq", "bot.handlers.faq:handle", question=True),
    # --- handoff and notifications areas ---
    Route("human_handoff", "bot.handlers.handoff:handle"),
    Route("notification_settings", "bot.handlers.notification_settings:handle",
          needs_link=True),
)

# Modules that may export ROUTES (added to / overriding the table above) and TASKS.
PLUGINS: tuple[str, ...] = (
    "bot.handlers.products",
    "bot.handlers.track",
    "bot.handlers.history",
    "bot.handlers.complaints",
    "bot.handlers.faq",
    "bot.handlers.greet",
    "bot.handlers.handoff",
    "bot.handlers.notification_settings",
)

# Greeting falls back to our smalltalk when the greet module is not there.
FALLBACK_HANDLERS: dict[str, str] = {
    "greet": "bot.handlers.smalltalk:greet",
    "help": "bot.handlers.smalltalk:menu",
    "human_handoff": "bot.handlers.smalltalk:handoff",
}

_routes: dict[str, Route] | None = None
_resolved: dict[str, Any] = {}


def _load_ref(ref: str) -> Any | None:
    """Import ``module:attribute``; None when the module or attribute does not exist yet."""
    if ref in _resolved:
        return _resolved[ref]
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None  # the area has not landed yet: not an error
        raise
    value = getattr(module, attr, None)
    if value is not None:
        _resolved[ref] = value
    return value


def routes() -> dict[str, Route]:
    """The table with every plugin's ROUTES merged in (built once)."""
    global _routes
    if _routes is not None:
        return _routes
    table = {r.intent: r for r in TABLE}
    for name in PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue
            raise
        for route in getattr(module, "ROUTES", ()) or ():
            table[route.intent] = route
        for task in getattr(module, "TASKS", ()) or ():
            register_task(task)
    _routes = table
    # Register every task definition that exists so a task in progress can always resume.
    for route in table.values():
        if route.task:
            task = _load_ref(route.task)
            if isinstance(task, TaskDef):
                register_task(task)
    return table


def route_for(intent: str) -> Route | None:
    """The route of an intent; "faq/trading_hours" uses the "faq" route."""
    table = routes()
    if intent in table:
        return table[intent]
    base = intent.split("/", 1)[0]
    return table.get(base)


def handler_for(route: Route) -> Handler | None:
    if route.handler is None:
        return None
    found = _load_ref(route.handler)
    if found is None and route.intent in FALLBACK_HANDLERS:
        found = _load_ref(FALLBACK_HANDLERS[route.intent])
    return found


def task_for(route: Route) -> TaskDef | None:
    if route.task is None:
        return None
    task = _load_ref(route.task)
    if isinstance(task, TaskDef):
        register_task(task)
        return task
    return None


def available(intent: str) -> bool:
    """True when the intent has a handler or task that exists now."""
    route = route_for(intent)
    if route is None:
        return False
    return handler_for(route) is not None or task_for(route) is not None


def reset() -> None:
    """Tests: forget the merged table (after monkeypatching a plugin)."""
    global _routes
    _routes = None
    _resolved.clear()
