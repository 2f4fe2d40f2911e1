"""History: periods, filters, paging; exports (CSV with BOM, valid PDF with CJK) behind a code."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pypdf
import pytest

from backend_client.client import PlatformClient
from bot.export import HistoryRow, find_cjk_font, render_csv, render_pdf
from bot.handlers import history
from bot.handlers.history import resolve_period
from bot.security import audit
from bot.store.db import Database
from tests.handlers.conftest import ChatFactory, CtxFactory, payloads, place_order, texts, turn
from tests.support.sandbox import SandboxServer

pytestmark = pytest.mark.timeout(90)

TODAY = date(2026, 11, 25)  # a Wednesday
SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("phrase", "start", "end"),
    [
        ("上个月", date(2026, 10, 1), date(2026, 10, 31)),
        ("last month", date(2026, 10, 1), date(2026, 10, 31)),
        ("这个月", date(2026, 11, 1), TODAY),
        ("this month", date(2026, 11, 1), TODAY),
        ("上周", date(2026, 11, 16), date(2026, 11, 22)),
        ("last week", date(2026, 11, 16), date(2026, 11, 22)),
        ("本周", date(2026, 11, 23), TODAY),
        ("今天", TODAY, TODAY),
        ("yesterday", date(2026, 11, 24), date(2026, 11, 24)),
        ("最近三个月", date(2026, 8, 25), TODAY),
        ("近7天", date(2026, 11, 19), TODAY),
        ("last 7 days", date(2026, 11, 19), TODAY),
        ("past 30 days", date(2026, 10, 27), TODAY),
        ("last 3 months", date(2026, 8, 25), TODAY),
        ("最近半年", date(2026, 5, 25), TODAY),
        ("最近一年", date(2025, 11, 25), TODAY),
        ("今年", date(2026, 1, 1), TODAY),
        ("去年", date(2025, 1, 1), date(2025, 12, 31)),
        ("last quarter", date(2026, 7, 1), date(2026, 9, 30)),
        ("2026年10月", date(2026, 10, 1), date(2026, 10, 31)),
        ("12月的记录", date(2025, 12, 1), date(2025, 12, 31)),
        ("november 2026", date(2026, 11, 1), TODAY),
        ("2026", date(2026, 1, 1), TODAY),
        ("show my orders from last month", date(2026, 10, 1), date(2026, 10, 31)),
        ("recently", date(2026, 10, 27), TODAY),
        ("我想看最近三个月的记录", date(2026, 8, 25), TODAY),
        ("2026-10-01..2026-10-31", date(2026, 10, 1), date(2026, 10, 31)),
    ],
)
def test_periods(phrase: str, start: date, end: date) -> None:
    assert resolve_period(phrase, TODAY) == (start, end)


@pytest.mark.parametrize("phrase", ["买了2000块的基金", "D20261125000001", "全部", "history", ""])
def test_no_period_in_amounts_ids_or_plain_words(phrase: str) -> None:
    assert resolve_period(phrase, TODAY) is None


def pdf_text(data: bytes) -> str:
    """The text of every page (pypdf renders CID glyphs with NULs between characters)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 1
    return "".join(page.extract_text() for page in reader.pages).replace("\x00", "")


def _rows() -> list[HistoryRow]:
    at = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
    return [
        HistoryRow(
            "D20261125000001",
            at,
            "BOND01",
            "安心短债",
            "subscribe",
            "submitted",
            Decimal("1000.00"),
            Decimal("921.65"),
        ),
        HistoryRow(
            "D20261125000002",
            at,
            "MMF01",
            "=稳盈货币A",
            "redeem",
            "failed",
            Decimal("500.00"),
            Decimal("500.00"),
        ),
    ]


def test_csv_opens_in_excel_with_the_rows() -> None:
    att = render_csv(_rows(), "zh", datetime(2026, 11, 25, 12, 0, tzinfo=SH))
    assert att.filename.endswith(".csv") and att.content_type == "text/csv"  # UTF-8 by its BOM
    assert att.data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel shows Chinese correctly
    rows = list(csv.reader(io.StringIO(att.data.decode("utf-8-sig"))))
    assert rows[0] == ["时间", "订单号", "产品", "类型", "金额（元）", "份额", "状态"]
    assert rows[1] == [
        "2026年11月25日 10:00",
        "D20261125000001",
        "安心短债 (BOND01)",
        "申购",
        "1000.00",
        "921.6500",
        "已提交",
    ]
    assert rows[2][2].startswith("'=")  # never a formula in a spreadsheet
    assert rows[2][3:] == ["赎回", "500.00", "500.0000", "交易失败"]


def test_pdf_is_valid_and_holds_chinese_text() -> None:
    assert find_cjk_font().path.exists()
    att = render_pdf(_rows(), "zh", datetime(2026, 11, 25, 12, 0, tzinfo=SH), "全部时间")
    assert att.content_type == "application/pdf" and att.data.startswith(b"%PDF-")
    text = pdf_text(att.data)
    for words in ("交易记录", "D20261125000001", "安心短债", "¥1,000.00", "交易失败", "理财非存款"):
        assert words in text, words
    en = render_pdf(_rows(), "en", datetime(2026, 11, 25, 12, 0, tzinfo=SH), "all time")
    en_text = pdf_text(en.data)
    assert "Transaction history" in en_text and "failed" in en_text


async def _orders(sandbox: SandboxServer, backend: PlatformClient) -> dict[str, object]:
    """A customer with 7 orders on 2026-10-20 (3) and 2026-11-25 (4), one failed."""
    c = await sandbox.create_customer(
        risk_tolerance="C4",
        cash="100000.00",
        holdings=[{"product": "MMF01", "shares": "5000", "acquired_at": "2026-01-05"}],
    )
    await sandbox.set_clock("2026-10-20T10:00:00+08:00")
    for product in ("MMF01", "BOND01", "IDX300"):
        await place_order(sandbox, backend, c, "subscribe", product, amount="1000")
    await sandbox.set_clock("2026-11-25T10:00:00+08:00")
    ids = [await place_order(sandbox, backend, c, "subscribe", "BOND01", amount="200")]
    ids.append(await place_order(sandbox, backend, c, "subscribe", "MIX01", amount="300"))
    ids.append(await place_order(sandbox, backend, c, "redeem", "MMF01", shares="100"))
    ids.append(await place_order(sandbox, backend, c, "subscribe", "MMF01", amount="50"))
    await sandbox.fail_order(ids[1], "银行扣款失败")
    return {**c, "november": ids}


async def test_history_filters_and_paging(
    sandbox: SandboxServer, backend: PlatformClient, make_ctx: CtxFactory
) -> None:
    c = await _orders(sandbox, backend)
    ctx = make_ctx("zh", customer_id=str(c["customer_id"]))

    reply = await history.handle(turn("交易记录", "transaction_history"), ctx)
    text = reply[0].text
    assert "共7笔，第1/2页" in text and text.count("• ") == history.PAGE_SIZE
    more = [p for p in payloads(reply) if p.startswith("/transaction_history")]
    assert more == ['/transaction_history{"page":"2"}']
    assert '/export_history{"format":"csv"}' in payloads(reply)

    page2 = await history.handle(turn(more[0], "transaction_history", page="2"), ctx)
    assert "第2/2页" in page2[0].text and page2[0].text.count("• ") == 2
    assert not [p for p in payloads(page2) if p.startswith("/transaction_history")]

    reply = await history.handle(
        turn("上个月的交易记录", "transaction_history", period="上个月"), ctx
    )
    assert "共3笔" in reply[0].text and "2026年10月1日至2026年10月31日" in reply[0].text
    assert '/export_history{"format":"pdf","period":"上个月"}' in payloads(reply)

    reply = await history.handle(turn("失败的交易", "transaction_history"), ctx)
    assert "共1笔" in reply[0].text and str(c["november"][1]) in reply[0].text

    en = make_ctx("en", customer_id=str(c["customer_id"]))
    reply = await history.handle(
        turn("my bond fund trades", "transaction_history", "en", product_type="bond"), en
    )
    assert "2 in total" in reply[0].text and "Short-term Bond" in reply[0].text
    reply = await history.handle(turn("what have i sold so far", "transaction_history", "en"), en)
    assert (
        "1 in total" in reply[0].text
        and "Redeem" in reply[0].text
        and "100.00 shares" in reply[0].text
    )
    reply = await history.handle(
        turn("history for last week", "transaction_history", "en", period="last week"), en
    )
    assert "No transactions found" in reply[0].text


async def test_csv_export_needs_a_fresh_code(
    sandbox: SandboxServer, backend: PlatformClient, linked_chat: ChatFactory, task_db: Database
) -> None:
    c = await _orders(sandbox, backend)
    chat = await linked_chat(c)
    summary = await chat.say('/export_history{"format":"csv","period":"上个月"}')
    assert "共3笔" in texts(summary) and "/confirm" in payloads(summary)
    assert not any(r.attachment for r in summary)
    before = len(await sandbox.sms(str(c["phone"])))
    asked = await chat.say("/confirm")
    assert not any(r.attachment for r in asked)
    assert len(await sandbox.sms(str(c["phone"]))) == before + 1  # a fresh code for "export"
    wrong = await chat.say(
        "000000" if (await sandbox.last_code(str(c["phone"]))) != "000000" else "111111"
    )
    assert not any(r.attachment for r in wrong)
    done = await chat.say(await sandbox.last_code(str(c["phone"])))
    files = [r.attachment for r in done if r.attachment]
    assert len(files) == 1 and files[0].filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(files[0].data.decode("utf-8-sig"))))
    assert len(rows) == 1 + 3
    assert {r[2] for r in rows[1:]} == {
        "稳盈货币A (MMF01)",
        "安心短债 (BOND01)",
        "沪深300指数增强 (IDX300)",
    }
    assert all(r[0].startswith("2026年10月20日") for r in rows[1:])
    # The export is in the audit trail, under a pseudonym, with no file content.
    entries = await audit.entries_for(task_db, str(c["customer_id"]))
    exports = [e for e in entries if e.kind == "export"]
    assert len(exports) == 1 and exports[0].details.get("task") == "export_history"
    assert str(c["customer_id"]) not in (exports[0].subject or "")
    assert "安心短债" not in str(exports[0].details)


async def test_pdf_export_in_english(
    sandbox: SandboxServer, backend: PlatformClient, linked_chat: ChatFactory
) -> None:
    c = await _orders(sandbox, backend)
    chat = await linked_chat(c, lang="en")
    ask = await chat.say("/export_history")
    assert "Which format" in texts(ask)
    assert '/export_history{"format":"pdf"}' in payloads(ask)
    summary = await chat.say('/export_history{"format":"pdf"}')
    assert "7 record(s) as PDF" in texts(summary)
    await chat.say("/confirm")
    done = await chat.say(await sandbox.last_code(str(c["phone"])))
    files = [r.attachment for r in done if r.attachment]
    assert len(files) == 1 and files[0].content_type == "application/pdf"
    text = pdf_text(files[0].data)
    for order_id in c["november"]:  # type: ignore[attr-defined]
        assert order_id in text
    assert "Balanced Hybrid" in text and "failed" in text


async def test_a_period_in_free_text_travels_as_dates(
    sandbox: SandboxServer, backend: PlatformClient, make_ctx: CtxFactory
) -> None:
    c = await _orders(sandbox, backend)
    ctx = make_ctx("en", customer_id=str(c["customer_id"]))
    reply = await history.handle(
        turn("can you show me everything from last month please", "transaction_history", "en"), ctx
    )
    assert "3 in total" in reply[0].text and "2026-10-01 to 2026-10-31" in reply[0].text
    assert '/export_history{"format":"csv","period":"2026-10-01..2026-10-31"}' in payloads(reply)
    assert all("please" not in p for p in payloads(reply))


async def test_pdf_without_a_cjk_font_fails_clearly_before_any_code(
    sandbox: SandboxServer,
    backend: PlatformClient,
    linked_chat: ChatFactory,
    tmp_path: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bot.export

    monkeypatch.setattr(bot.export, "FONT_DIRS", (tmp_path,))
    bot.export.find_cjk_font.cache_clear()
    try:
        with pytest.raises(bot.export.ExportFontMissing, match="fonts-noto-cjk"):
            bot.export.find_cjk_font()
        c = await _orders(sandbox, backend)
        chat = await linked_chat(c)
        sent = len(await sandbox.sms(str(c["phone"])))
        reply = await chat.say('/export_history{"format":"pdf"}')
        assert "中文字体" in texts(reply) and '/export_history{"format":"csv"}' in payloads(reply)
        assert len(await sandbox.sms(str(c["phone"]))) == sent  # no code was sent for nothing
    finally:
        bot.export.find_cjk_font.cache_clear()


def test_long_pdf_spans_pages_with_every_row_and_a_header_on_each() -> None:
    at = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
    rows = [
        HistoryRow(f"D20261125{i:06d}", at, "IDX300", "沪深300指数增强", "subscribe", "confirmed",
                   Decimal("1000.00"), Decimal("427.17"))
        for i in range(120)
    ]  # fmt: skip
    att = render_pdf(rows, "zh", at, "全部时间")
    reader = pypdf.PdfReader(io.BytesIO(att.data))
    assert len(reader.pages) >= 3
    pages = [p.extract_text().replace("\x00", "") for p in reader.pages]
    assert all("订单号" in page for page in pages)  # the column header repeats
    text = "".join(pages)
    assert all(r.order_id in text for r in rows)


async def test_a_question_at_the_summary_does_not_change_the_export(
    sandbox: SandboxServer, backend: PlatformClient, linked_chat: ChatFactory
) -> None:
    c = await _orders(sandbox, backend)
    chat = await linked_chat(c)
    summary = await chat.say('/export_history{"format":"csv","period":"上个月"}')
    assert "共3笔" in texts(summary)
    await chat.say("赎回一般多久到账")  # not an answer to the export; the NLU takes it
    await chat.say("/confirm")
    done = await chat.say(await sandbox.last_code(str(c["phone"])))
    [file] = [r.attachment for r in done if r.attachment]
    assert len(list(csv.reader(io.StringIO(file.data.decode("utf-8-sig"))))) == 1 + 3
