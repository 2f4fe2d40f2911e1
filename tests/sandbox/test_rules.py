"""Unit tests of the platform's pure business rules (window, holidays, fees, FIFO, limits)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import rules
from sandbox.rules import Calendar, LotPart, RuleError, Tier
from sandbox.settings import DEFAULT_HOLIDAYS, DEFAULT_REDEMPTION_TIERS, SandboxSettings

SH = ZoneInfo("Asia/Shanghai")
CAL = Calendar(holidays=frozenset(DEFAULT_HOLIDAYS), tz=SH)
TIERS = [Tier(t.min_days, t.max_days, t.rate) for t in DEFAULT_REDEMPTION_TIERS]


def sh(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


# ---------------------------------------------------------------- risk
@pytest.mark.parametrize(
    ("customer", "product", "ok"),
    [("C3", "R3", True), ("C3", "R2", True), ("C3", "R4", False), ("C1", "R1", True),
     ("C1", "R2", False), ("C5", "R5", True)],
)
def test_risk_matching_allows_product_up_to_tolerance(customer: str, product: str, ok: bool):
    assert rules.risk_ok(customer, product) is ok


def test_bad_risk_level_is_refused():
    with pytest.raises(ValueError):
        rules.risk_ok("C6", "R1")


# ---------------------------------------------------------------- window and calendar
def test_window_edges_1659_59_inside_1700_outside():
    assert CAL.is_trading_time(sh("2026-11-25T16:59:59"))
    assert not CAL.is_trading_time(sh("2026-11-25T17:00:00"))
    assert CAL.is_trading_time(sh("2026-11-25T09:00:00"))
    assert not CAL.is_trading_time(sh("2026-11-25T08:59:59"))


def test_order_at_1700_is_scheduled_for_next_trading_day():
    assert CAL.trade_date(sh("2026-11-25T16:59:59")) == (date(2026, 11, 25), False)
    assert CAL.trade_date(sh("2026-11-25T17:00:00")) == (date(2026, 11, 26), True)
    assert CAL.next_trading_open(sh("2026-11-25T17:00:00")) == sh("2026-11-26T09:00:00")


def test_early_morning_order_trades_the_same_day_at_open():
    assert CAL.trade_date(sh("2026-11-25T07:30:00")) == (date(2026, 11, 25), True)


def test_friday_evening_and_weekend_go_to_monday():
    assert CAL.trade_date(sh("2026-11-27T18:00:00")) == (date(2026, 11, 30), True)
    assert CAL.trade_date(sh("2026-11-28T11:00:00")) == (date(2026, 11, 30), True)


def test_national_day_holiday_is_closed_and_skipped():
    assert not CAL.is_trading_day(date(2026, 10, 1))
    assert not CAL.is_trading_time(sh("2026-10-05T10:00:00"))  # a Monday inside the holiday
    assert CAL.trade_date(sh("2026-09-30T17:30:00")) == (date(2026, 10, 8), True)
    assert CAL.next_trading_day(date(2026, 9, 30)) == date(2026, 10, 8)


def test_spring_festival_2026_is_closed():
    assert CAL.next_trading_day(date(2026, 2, 13)) == date(2026, 2, 24)


def test_holidays_are_configuration_not_code():
    s = SandboxSettings(_env_file=None, holidays=[date(2026, 11, 26)])  # type: ignore[call-arg]
    cal = Calendar(holidays=frozenset(s.holidays), tz=SH)
    assert cal.trade_date(sh("2026-11-25T17:00:00")) == (date(2026, 11, 27), True)


def test_t_plus_n_counts_trading_days():
    assert CAL.add_trading_days(date(2026, 11, 27), 0) == date(2026, 11, 27)
    assert CAL.add_trading_days(date(2026, 11, 27), 1) == date(2026, 11, 30)
    assert CAL.add_trading_days(date(2026, 9, 29), 2) == date(2026, 10, 8)


def test_subscription_confirms_next_trading_day_within_24h_and_settles_t_plus_2():
    s = rules.subscription_schedule(CAL, date(2026, 11, 25))
    assert s.first_at == sh("2026-11-26T09:00:00")
    assert s.first_at - sh("2026-11-25T10:00:00") <= timedelta(hours=24)
    assert s.second_at == sh("2026-11-27T09:00:00")


@pytest.mark.parametrize(
    ("n", "processed", "arrived"),
    [(0, "2026-11-25T17:00:00", "2026-11-25T17:00:00"),
     (1, "2026-11-26T09:00:00", "2026-11-26T09:00:00"),
     (2, "2026-11-26T09:00:00", "2026-11-27T09:00:00")],
)
def test_redemption_arrives_t_plus_n(n: int, processed: str, arrived: str):
    s = rules.redemption_schedule(CAL, date(2026, 11, 25), n)
    assert (s.first_at, s.second_at) == (sh(processed), sh(arrived))


def test_complaint_deadline_counts_working_days():
    assert CAL.add_working_days(sh("2026-11-27T10:00:00"), 7) == sh("2026-12-08T10:00:00")


# ---------------------------------------------------------------- fees
def test_subscription_fee_and_shares_round_as_documented():
    fee = rules.subscription_fee(Decimal("5000.00"), Decimal("0.003"))
    assert fee == Decimal("15.00")
    assert rules.subscription_shares(Decimal("5000.00"), fee, Decimal("1.0850")) == Decimal(
        "4594.47")  # 4594.470046… rounded down
    assert rules.subscription_fee(Decimal("100.01"), Decimal("0.015")) == Decimal("1.50")  # 1.50015
    assert rules.subscription_fee(Decimal("100.00"), Decimal("0.015")) == Decimal("1.50")
    assert rules.subscription_fee(Decimal("33.00"), Decimal("0.015")) == Decimal("0.50")  # .495 up


@pytest.mark.parametrize(("days", "rate"), [(0, "0.015"), (6, "0.015"), (7, "0.005"),
                                            (365, "0.005"), (366, "0")])
def test_redemption_fee_tier_edges(days: int, rate: str):
    assert rules.redemption_tier(days, TIERS)[1].rate == Decimal(rate)


def test_redemption_estimate_fifo_across_tiers():
    lots = [(2, date(2026, 11, 20), Decimal("500")), (1, date(2025, 1, 1), Decimal("1000"))]
    parts = rules.allocate_fifo(lots, Decimal("1200"))
    assert parts == [LotPart(1, date(2025, 1, 1), Decimal("1000")),
                     LotPart(2, date(2026, 11, 20), Decimal("200"))]
    est = rules.redemption_estimate(parts, Decimal("1.0850"), date(2026, 11, 25), TIERS)
    assert est.gross == Decimal("1302.00")
    assert est.fee == Decimal("3.26")  # 1000 held > 1 y: 0; 200 × 1.085 × 1.5 % = 3.255 → 3.26
    assert est.net == Decimal("1298.74")
    assert est.fee_rule == "mixed" and est.fee_rate is None and est.holding_days == 5


def test_redemption_single_tier_names_the_rule():
    parts = [LotPart(1, date(2026, 11, 18), Decimal("100"))]
    est = rules.redemption_estimate(parts, Decimal("2.0000"), date(2026, 11, 25), TIERS)
    assert (est.fee_rule, est.fee_rate, est.fee, est.net) == (
        "holding_7_to_365_days", Decimal("0.005"), Decimal("1.00"), Decimal("199.00"))


def test_fifo_refuses_more_than_held():
    with pytest.raises(RuleError) as exc:
        rules.allocate_fifo([(1, date(2026, 1, 1), Decimal("10"))], Decimal("10.01"))
    assert exc.value.code == "insufficient_shares" and exc.value.details["available"] == "10.00"


def test_amount_redemption_rounds_shares_up():
    assert rules.shares_for_amount(Decimal("1000"), Decimal("1.0850")) == Decimal("921.66")


@settings(deadline=None, max_examples=200)  # a loaded 2-core CI box: no per-example deadline
@given(
    amount=st.decimals(min_value=Decimal("1"), max_value=Decimal("1000000"), places=2),
    rate=st.sampled_from([Decimal("0"), Decimal("0.003"), Decimal("0.012"), Decimal("0.015")]),
    nav=st.decimals(min_value=Decimal("0.5"), max_value=Decimal("5"), places=4),
)
def test_subscription_never_over_issues_shares(amount: Decimal, rate: Decimal, nav: Decimal):
    fee = rules.subscription_fee(amount, rate)
    shares = rules.subscription_shares(amount, fee, nav)
    assert fee == fee.quantize(Decimal("0.01")) and shares == shares.quantize(Decimal("0.01"))
    assert shares * nav <= amount - fee < (shares + Decimal("0.01")) * nav


@settings(deadline=None)
@given(
    sizes=st.lists(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000"), places=2),
                   min_size=1, max_size=5),
    frac=st.floats(min_value=0.01, max_value=1.0),
)
def test_fifo_takes_exactly_what_is_asked_oldest_first(sizes: list[Decimal], frac: float):
    lots = [(i, date(2026, 1, 1) + timedelta(days=i), s) for i, s in enumerate(sizes)]
    total = sum(sizes, Decimal(0))
    want = max(Decimal("0.01"), (total * Decimal(str(frac))).quantize(Decimal("0.01")))
    want = min(want, total)
    parts = rules.allocate_fifo(lots, want)
    assert sum((p.shares for p in parts), Decimal(0)) == want
    assert [p.lot_id for p in parts] == list(range(len(parts)))
    est = rules.redemption_estimate(parts, Decimal("1.2345"), date(2026, 11, 25), TIERS)
    assert est.net == est.gross - est.fee and Decimal(0) <= est.fee <= est.gross


# ---------------------------------------------------------------- limits and input
def test_limits_and_cash_checks_in_order():
    args = dict(minimum=Decimal("100"), per_order_limit=Decimal("500000"),
                daily_limit=Decimal("1000000"), used_today=Decimal("0"), cash=Decimal("50000"))
    rules.check_subscription_amount(Decimal("100"), **args)  # the minimum itself is fine
    for amount, code in (("99.99", "below_minimum"), ("500000.01", "above_order_limit"),
                         ("50000.01", "insufficient_cash")):
        with pytest.raises(RuleError) as exc:
            rules.check_subscription_amount(Decimal(amount), **args)
        assert exc.value.code == code
    with pytest.raises(RuleError) as exc:
        rules.check_subscription_amount(Decimal("200"), **{**args, "used_today": Decimal(
            "999900")})
    assert exc.value.code == "above_daily_limit" and exc.value.details["remaining"] == "100.00"


@pytest.mark.parametrize("bad", ["-1", "0", "NaN", "Infinity", "1.001", "abc", "", True, None,
                                 [], {}, "1e20"])
def test_bad_amounts_are_validation_errors(bad: object):
    with pytest.raises(RuleError) as exc:
        rules.parse_decimal(bad, "amount")
    assert exc.value.code == "validation_error" and exc.value.status == 400


@pytest.mark.parametrize(("raw", "value"), [("5000", "5000.00"), (5000, "5000.00"),
                                            ("1,000.5", "1000.50"), (" 12.30 ", "12.30")])
def test_good_amounts_parse_to_cents(raw: object, value: str):
    assert rules.parse_decimal(raw, "amount") == Decimal(value)


def test_link_codes_accept_dashes_and_lower_case():
    assert rules.normalize_link_code("7kq4-m2xd") == "7KQ4M2XD"
    assert not set("01OI") & set(rules.LINK_ALPHABET)


def test_masking_keeps_only_what_is_needed():
    assert rules.mask_phone("13812341234") == "138****1234"
    assert rules.mask_id_number("110101199001011234") == "110***********1234"
    assert rules.mask_card("6222021234567890") == "**** 7890"
