"""The sandbox platform's own database: tables (prefix sb_), engine and write transactions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
Money = Numeric(18, 2)
Shares = Numeric(18, 4)
UTCDateTime = DateTime(timezone=True)


class SandboxBase(DeclarativeBase):
    """Separate metadata from the bot's: the sandbox is the other side of an HTTP contract."""

    metadata = MetaData(naming_convention=NAMING)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every timestamp stored here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class ProductRow(SandboxBase):
    __tablename__ = "sb_products"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    risk: Mapped[str] = mapped_column(String(2))
    nav: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    term: Mapped[str] = mapped_column(String(16))
    settlement_days: Mapped[int] = mapped_column(Integer)
    min_amount: Mapped[Decimal] = mapped_column(Money)
    per_order_limit: Mapped[Decimal] = mapped_column(Money)
    daily_limit: Mapped[Decimal] = mapped_column(Money)
    subscription_fee_rate: Mapped[Decimal] = mapped_column(Numeric(8, 6))
    return_low_pct: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    return_high_pct: Mapped[Decimal] = mapped_column(Numeric(6, 2))


class CustomerRow(SandboxBase):
    __tablename__ = "sb_customers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32), index=True)
    id_number: Mapped[str] = mapped_column(String(32))
    bank_card: Mapped[str] = mapped_column(String(32))
    bank_name: Mapped[str] = mapped_column(String(64))
    verified: Mapped[bool] = mapped_column(Boolean, default=True)
    risk_tolerance: Mapped[str] = mapped_column(String(2))
    cash: Mapped[Decimal] = mapped_column(Money)
    wrong_codes: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LinkCodeRow(SandboxBase):
    __tablename__ = "sb_link_codes"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("sb_customers.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LotRow(SandboxBase):
    __tablename__ = "sb_lots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("sb_customers.id"), index=True)
    product: Mapped[str] = mapped_column(String(16))
    shares: Mapped[Decimal] = mapped_column(Shares)
    acquired_at: Mapped[date] = mapped_column(Date)
    order_id: Mapped[str | None] = mapped_column(String(24), nullable=True)


class OrderRow(SandboxBase):
    __tablename__ = "sb_orders"
    __table_args__ = (UniqueConstraint("customer_id", "idempotency_key", name="uq_sb_orders_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str | None] = mapped_column(String(24), unique=True, nullable=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("sb_customers.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    challenge_id: Mapped[str] = mapped_column(String(40))
    side: Mapped[str] = mapped_column(String(16))
    product: Mapped[str] = mapped_column(String(16))
    product_type: Mapped[str] = mapped_column(String(32))
    request_amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    request_shares: Mapped[Decimal | None] = mapped_column(Shares, nullable=True)
    request_all: Mapped[bool] = mapped_column(Boolean, default=False)
    amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    shares: Mapped[Decimal | None] = mapped_column(Shares, nullable=True)
    fee: Mapped[Decimal] = mapped_column(Money)
    nav: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    trade_date: Mapped[date] = mapped_column(Date)
    scheduled: Mapped[bool] = mapped_column(Boolean)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    final_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    allocation: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)


class OrderHistoryRow(SandboxBase):
    __tablename__ = "sb_order_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_pk: Mapped[int] = mapped_column(ForeignKey("sb_orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class ChallengeRow(SandboxBase):
    __tablename__ = "sb_challenges"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("sb_customers.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    product: Mapped[str | None] = mapped_column(String(16), nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    shares: Mapped[Decimal | None] = mapped_column(Shares, nullable=True)
    all_shares: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SmsRow(SandboxBase):
    __tablename__ = "sb_sms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)
    text: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ComplaintRow(SandboxBase):
    __tablename__ = "sb_complaints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    complaint_id: Mapped[str | None] = mapped_column(String(24), unique=True, nullable=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("sb_customers.id"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    order_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_response_due: Mapped[datetime] = mapped_column(UTCDateTime)
    result_due: Mapped[datetime] = mapped_column(UTCDateTime)
    final_due: Mapped[datetime] = mapped_column(UTCDateTime)


class ComplaintHistoryRow(SandboxBase):
    __tablename__ = "sb_complaint_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    complaint_pk: Mapped[int] = mapped_column(ForeignKey("sb_complaints.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class EventRow(SandboxBase):
    """The outbox of platform events, written in the same transaction as the change."""

    __tablename__ = "sb_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)


class SandboxDB:
    """Engine, session maker and the write transaction (serialised on SQLite)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite cannot upgrade concurrent read transactions to writes without "database is
        # locked"; one process owns this file, so an in-process lock serialises writers.
        # PostgreSQL relies on row locks (SELECT … FOR UPDATE) and unique constraints instead.
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on error."""
        if self.is_sqlite:
            async with self._write_lock, self.sessions() as session, session.begin():
                yield session
        else:
            async with self.sessions() as session, session.begin():
                yield session

    async def create_all(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(SandboxBase.metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
