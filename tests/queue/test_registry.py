"""The registry's payload check: a handler gets the model it was registered for."""

from __future__ import annotations

import pytest

from ils.queue.jobtypes import OrderSheetPdf, ProcessOmaFile
from ils.queue.registry import payload_as


def test_payload_as_returns_the_payload_of_the_expected_model() -> None:
    payload = ProcessOmaFile(order_id="o1", file_id="f1")
    assert payload_as(payload, ProcessOmaFile) is payload


def test_payload_as_refuses_another_model_by_name() -> None:
    with pytest.raises(TypeError, match="expected ProcessOmaFile, not OrderSheetPdf"):
        payload_as(OrderSheetPdf(order_id="o1"), ProcessOmaFile)
