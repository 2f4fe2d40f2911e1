"""Codes for account actions name the action in the SMS and never authorise an order."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backend_client.client import PlatformClient
from backend_client.errors import PlatformError
from tests.support.sandbox import running_sandbox


@pytest.mark.parametrize(("action", "zh", "en"), [
    ("export_history", "导出交易记录", "export your transaction history"),
    ("unlink", "解除聊天账户绑定", "unlink this chat"),
    ("erase_data", "删除客服对话中的个人数据", "erase your data"),
])
async def test_account_action_sms_names_the_action(tmp_path, action: str, zh: str, en: str) -> None:  # type: ignore[no-untyped-def]
    async with running_sandbox(tmp_dir=tmp_path) as sandbox:
        customer = await sandbox.create_customer()
        async with PlatformClient(sandbox.base_url) as client:
            ch = await client.create_challenge(customer["customer_id"], action, f"key-{action}-0001")
            await client.create_challenge(customer["customer_id"], action, f"key-{action}-0002", lang="en")
            sms = [m["text"] for m in await sandbox.sms(customer["phone"])]
            assert zh in sms[-2] and en in sms[-1]
            verified = await client.verify_challenge(ch.challenge_id, await _code(sandbox, customer, -2))
            assert verified is not None
            # a verified account-action code cannot be spent on an order
            with pytest.raises(PlatformError):
                await client.place_order(customer["customer_id"], f"key-{action}-0001", "subscribe",
                                         "MMF01", ch.challenge_id, amount=Decimal("100"))
        assert await sandbox.orders(customer["customer_id"]) == []


async def _code(sandbox, customer, index: int) -> str:  # type: ignore[no-untyped-def]
    import re

    texts = await sandbox.sms(customer["phone"])
    return re.search(r"\b(\d{6})\b", texts[index]["text"]).group(1)  # type: ignore[union-attr]
