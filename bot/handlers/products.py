"""The product catalog: list, filter by risk or type, one product's details, with disclaimers."""

from __future__ import annotations

import re
from decimal import Decimal

from backend_client.errors import NotFound, PlatformError
from backend_client.models import Product
from bot.dialogue.types import Context, Reply, Turn
from bot.handlers.greet import payload
from bot.locales import money
from bot.types import Button, Outgoing

__all__ = ["TYPES", "handle", "risk_word_key", "type_from_text", "wanted_levels", "wanted_type"]

RISK_ORDER = ("R1", "R2", "R3", "R4", "R5")
# DOMAIN.md: R1–R2 low, R3 medium, R4–R5 high.
RISK_BANDS: dict[str, tuple[str, ...]] = {
    "low": ("R1", "R2"),
    "medium": ("R3",),
    "high": ("R4", "R5"),
}
TYPES = ("money_market", "bond", "hybrid", "equity_index", "qdii")

# Words customers use when NLU gives no entity (entity values win when present).
_TYPE_WORDS: tuple[tuple[str, str], ...] = (
    ("money_market", r"货币|money[ -]?market|\bmmf\b|cash fund"),
    ("bond", r"债|bond"),
    ("hybrid", r"混合|hybrid|mixed|balanced"),
    ("equity_index", r"指数|股票型|\bindex\b|equity|csi ?300|沪深"),
    ("qdii", r"qdii|海外|境外|overseas|global|全球"),
)
_BAND_WORDS: tuple[tuple[str, str], ...] = (
    ("low", r"低风险|风险低|稳健|保守|low[ -]?risk|\bsafe\b|conservative"),
    ("medium", r"中风险|中等风险|medium[ -]?risk|moderate"),
    ("high", r"高风险|风险高|激进|high[ -]?risk|aggressive"),
)
_MINE = re.compile(
    r"适合我|匹配我|我的风险|我能买|我可以买|suit(able|s)? (for )?me|for me\b|match(es)? my|my risk|i can buy",
    re.I,
)
_AT_MOST = re.compile(r"以下|以内|及以下|或以下|不超过|or (below|lower|less)|at most|up to", re.I)
_LEVEL = re.compile(r"\bR([1-5])\b|R([1-5])", re.I)


def risk_word_key(risk: str) -> str:
    """Locale key of the low/medium/high word for a product level."""
    for band, levels in RISK_BANDS.items():
        if risk in levels:
            return f"products.risk_word.{band}"
    return "products.risk_word.unknown"


def type_from_text(text: str) -> str | None:
    """A product type named in free text (货币/债/混合/指数/QDII, money market, bond ...)."""
    if text.startswith("/"):  # a button payload carries its filters as entities
        return None
    for ptype, pattern in _TYPE_WORDS:
        if re.search(pattern, text, re.I):
            return ptype
    return None


def wanted_type(turn: Turn) -> str | None:
    """The product type asked for: the `product_type` entity, else words in the text."""
    value = turn.nlu.first("product_type")
    if value in TYPES:
        return value
    return type_from_text(turn.message.text)


def wanted_levels(turn: Turn) -> tuple[str, ...] | str | None:
    """Risk levels asked for; the string "mine" means "suitable for the linked customer"."""
    value = (turn.nlu.first("risk_level") or "").strip()
    text = "" if turn.message.text.startswith("/") else turn.message.text
    if value.lower() in ("mine", "suitable", "me") or _MINE.search(text):
        return "mine"
    if value.lower() in RISK_BANDS:
        return RISK_BANDS[value.lower()]
    level = value.upper() if value.upper() in RISK_ORDER else None
    if level is None:
        m = _LEVEL.search(text)
        if m:
            level = "R" + (m.group(1) or m.group(2))
    if level is not None:
        if _AT_MOST.search(text):
            return RISK_ORDER[: RISK_ORDER.index(level) + 1]
        return (level,)
    for band, pattern in _BAND_WORDS:
        if re.search(pattern, text, re.I):
            return RISK_BANDS[band]
    return None


def _pct(rate: Decimal) -> str:
    """A fraction as a percentage without float noise: 0.015 → "1.5%", 0 → "0%"."""
    pct = (rate * 100).normalize()
    text = f"{pct:f}"
    return f"{text}%"


def _line(p: Product, ctx: Context) -> str:
    return ctx.t(
        "products.line",
        name=p.name(ctx.lang),
        code=p.code,
        type=ctx.t(f"products.type.{p.type}"),
        risk=p.risk,
        risk_word=ctx.t(risk_word_key(p.risk)),
        days=p.settlement_days,
        minimum=money(p.min_amount, ctx.lang),
        fee=_pct(p.subscription_fee_rate),
        low=f"{p.return_low_pct.normalize():f}",
        high=f"{p.return_high_pct.normalize():f}",
    )


def _fee_tiers(p: Product, ctx: Context) -> str:
    parts = []
    for tier in p.redemption_fee_tiers:
        if tier.max_days is None:
            span = ctx.t("products.tier_from", low=tier.min_days)
        elif tier.min_days == 0:
            span = ctx.t("products.tier_under", high=tier.max_days + 1)
        else:
            span = ctx.t("products.tier_between", low=tier.min_days, high=tier.max_days)
        parts.append(ctx.t("products.tier", span=span, rate=_pct(tier.rate)))
    return ctx.t("products.tier_sep").join(parts)


def _details(p: Product, ctx: Context) -> str:
    return ctx.t(
        "products.details",
        name=p.name(ctx.lang),
        code=p.code,
        type=ctx.t(f"products.type.{p.type}"),
        term=ctx.t(f"products.term.{p.term}"),
        risk=p.risk,
        risk_word=ctx.t(risk_word_key(p.risk)),
        nav=f"{p.nav:f}",
        nav_date=p.nav_date.isoformat(),
        days=p.settlement_days,
        minimum=money(p.min_amount, ctx.lang),
        order_limit=money(p.per_order_limit, ctx.lang),
        daily_limit=money(p.daily_limit, ctx.lang),
        fee=_pct(p.subscription_fee_rate),
        tiers=_fee_tiers(p, ctx),
        low=f"{p.return_low_pct.normalize():f}",
        high=f"{p.return_high_pct.normalize():f}",
    )


def _buy_button(p: Product, ctx: Context) -> Button:
    return Button(
        title=ctx.t("products.buy_button", name=p.name(ctx.lang)),
        payload=payload("buy_product", product=p.code),
    )


async def _customer_risk(ctx: Context) -> str | None:
    if not ctx.customer_id:
        return None
    customer = await ctx.backend.get_customer(ctx.customer_id)
    return customer.risk_tolerance


def _suitable(products: list[Product], tolerance: str) -> list[Product]:
    # Same numbering on both scales (C1–C5 / R1–R5): a product fits when Rn ≤ Cn. The
    # platform re-checks every order (quote.suitability); this only narrows the list shown.
    limit = int(tolerance[1:]) if tolerance[1:].isdigit() else 0
    return [p for p in products if p.risk[1:].isdigit() and int(p.risk[1:]) <= limit]


async def handle(turn: Turn, ctx: Context) -> Reply:
    """list_products: one product by name, or the catalog filtered by risk and type."""
    try:
        code = turn.nlu.first("product")
        if code:
            return await _one(code.upper(), ctx)
        return await _catalog(turn, ctx)
    except PlatformError:
        return [Outgoing(text=ctx.t("products.unavailable"))]


async def _one(code: str, ctx: Context) -> Reply:
    try:
        p = await ctx.backend.get_product(code)
    except NotFound:
        return [
            Outgoing(
                text=ctx.t("products.unknown"),
                buttons=(Button(ctx.t("products.all_button"), payload("list_products")),),
            )
        ]
    text = _details(p, ctx)
    tolerance = await _customer_risk(ctx)
    if tolerance is not None:
        fits = bool(_suitable([p], tolerance))
        text += "\n" + ctx.t(
            "products.fits" if fits else "products.not_fits", tolerance=tolerance, risk=p.risk
        )
    text += "\n\n" + ctx.t("products.disclaimer")
    return [
        Outgoing(
            text=text,
            buttons=(
                _buy_button(p, ctx),
                Button(ctx.t("products.all_button"), payload("list_products")),
            ),
        )
    ]


async def _catalog(turn: Turn, ctx: Context) -> Reply:
    products = await ctx.backend.list_products()
    levels = wanted_levels(turn)
    ptype = wanted_type(turn)
    header = ctx.t("products.header_all")
    if levels == "mine":
        tolerance = await _customer_risk(ctx)
        if tolerance is None:
            return [
                Outgoing(
                    text=ctx.t("products.need_link_for_mine"),
                    buttons=(Button(ctx.t("products.all_button"), payload("list_products")),),
                )
            ]
        products = _suitable(products, tolerance)
        header = ctx.t("products.header_mine", tolerance=tolerance)
    elif levels:
        products = [p for p in products if p.risk in levels]
        header = ctx.t("products.header_risk", levels="/".join(levels))
    if ptype:
        products = [p for p in products if p.type == ptype]
        header = (
            ctx.t("products.header_type", type=ctx.t(f"products.type.{ptype}"))
            if not levels
            else (header + " · " + ctx.t(f"products.type.{ptype}"))
        )
    if not products:
        return [
            Outgoing(
                text=ctx.t("products.none_match"),
                buttons=(Button(ctx.t("products.all_button"), payload("list_products")),),
            )
        ]
    lines = [header] + [_line(p, ctx) for p in products]
    lines.append(ctx.t("products.returns_note"))
    lines.append(ctx.t("products.disclaimer"))
    detail_hint = ctx.t("products.detail_hint")
    return [
        Outgoing(
            text="\n".join(lines) + "\n" + detail_hint,
            buttons=tuple(_buy_button(p, ctx) for p in products),
        )
    ]
