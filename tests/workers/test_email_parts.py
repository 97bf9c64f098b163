"""The e-mail worker's pieces on their own: formats, escaping, links, reply mapping."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from decimal import Decimal

import aiosmtplib
import pytest

from ils.domain.companies import Company, CompanyKind
from ils.errors import MailDataMissingError, MailDeliveryError, MailRefusedError
from ils.settings import Settings, SmtpSettings
from ils.workers.email.compose import compose, message_id_domain, message_key
from ils.workers.email.content import briefing_sections
from ils.workers.email.drafts import DEFAULT_BRAND_COLOR, Brand, MailDraft, Recipient
from ils.workers.email.links import PlatformLinks, tracking_url
from ils.workers.email.render import Body, Renderer, dioptres, money, paragraphs
from ils.workers.email.smtp import classify


def test_prescription_values_always_carry_their_sign() -> None:
    assert [dioptres(Decimal(v)) for v in ("-2.25", "1.5", "0", "0.00")] == [
        "-2.25",
        "+1.50",
        "0.00",
        "0.00",
    ]
    assert dioptres(None) == ""
    assert money(123_456) == "1,234.56" and money(-5) == "-0.05" and money(None) == ""


def test_user_text_becomes_escaped_paragraphs() -> None:
    html = paragraphs('One <b>\nline & "two"\n\n\n<script>x</script>')
    assert html == (
        "<p>One &lt;b&gt;<br>\nline &amp; &#34;two&#34;</p>\n<p>&lt;script&gt;x&lt;/script&gt;</p>"
    )
    assert paragraphs("") == ""


def test_html_templates_escape_and_text_templates_do_not() -> None:
    renderer = Renderer()
    context = {
        "brand": Brand("A&B <Lab>", "A&B", "#123456", ("1 Road",), None, None),
        "platform": {"name": "ILS", "url": "http://x"},
        "recipient_name": "<Ann>",
        "subject": "S",
        "content": "<i>hi</i>",
        "links": {"home": "http://x/?a=1&b=2"},
    }
    body = renderer.render("general_notification", context)
    assert "A&amp;B &lt;Lab&gt;" in body.html and "&lt;Ann&gt;" in body.html
    assert "&lt;i&gt;hi&lt;/i&gt;" in body.html and 'href="http://x/?a=1&amp;b=2"' in body.html
    assert "Hello <Ann>," in body.text and "<i>hi</i>" in body.text


def test_tracking_links_for_known_carriers_encode_the_number() -> None:
    assert tracking_url("Royal Mail", "AB 123/4") == (
        "https://www.royalmail.com/track-your-item#/tracking-results/AB%20123%2F4"
    )
    assert tracking_url("UPS", "1Z9") == "https://www.ups.com/track?tracknum=1Z9"
    assert tracking_url("Pigeon Post", "1") is None
    assert tracking_url(None, "1") is None


def test_platform_links_come_from_the_public_url() -> None:
    links = PlatformLinks(Settings(_env_file=None, public_url="https://lab.example/").public_url)
    assert links.order("abc") == "https://lab.example/orders/abc"
    assert links.purchase_order("a/b") == "https://lab.example/purchase-orders/a%2Fb"
    with pytest.raises(ValueError, match="http"):
        Settings(_env_file=None, public_url="javascript:alert(1)")


def test_a_brand_colour_that_is_not_hex_is_replaced() -> None:
    company = Company(kind=CompanyKind.LAB, name="L", primary_color="red;background:url(x)")
    assert Brand.of(company).color == DEFAULT_BRAND_COLOR
    assert Brand.of(company).logo_text == "L"


@pytest.mark.parametrize(
    ("exc", "kind", "fragment"),
    [
        (aiosmtplib.SMTPRecipientRefused(550, "5.1.1 unknown", "a@b"), MailRefusedError, "550"),
        (aiosmtplib.SMTPRecipientRefused(450, "busy", "a@b"), MailDeliveryError, "450"),
        (aiosmtplib.SMTPDataError(554, "spam"), MailRefusedError, "message refused"),
        (aiosmtplib.SMTPDataError(421, "closing"), MailDeliveryError, "421"),
        (aiosmtplib.SMTPAuthenticationError(535, "bad"), MailRefusedError, "ILS_SMTP__PASSWORD"),
        (aiosmtplib.SMTPSenderRefused(553, "no", "x"), MailRefusedError, "FROM_ADDRESS"),
        (aiosmtplib.SMTPServerDisconnected("reset"), MailDeliveryError, "connection"),
        (aiosmtplib.SMTPConnectTimeoutError("slow"), MailDeliveryError, "in time"),
        (ConnectionResetError("reset by peer"), MailDeliveryError, "reset by peer"),
        (aiosmtplib.SMTPException("AUTH not offered"), MailRefusedError, "AUTH"),
    ],
)
def test_replies_and_network_errors_map_to_permanent_or_retryable(
    exc: Exception, kind: type[Exception], fragment: str
) -> None:
    error = classify(exc, data_started=False, where="mx:25")
    assert type(error) is kind
    assert fragment in str(error)


def test_a_lost_reply_after_the_content_is_unconfirmed() -> None:
    error = classify(aiosmtplib.SMTPServerDisconnected("eof"), data_started=True, where="mx:25")
    assert isinstance(error, MailDeliveryError) and error.unconfirmed
    definite = classify(aiosmtplib.SMTPDataError(451, "later"), data_started=True, where="mx")
    assert isinstance(definite, MailDeliveryError) and not definite.unconfirmed


def draft(address: str) -> MailDraft:
    brand = Brand("Clear View Lab", "CV", "#000000", (), "lab@example.com", None)
    return MailDraft(Recipient("user:1", address, "Ann", None), "c1", brand, "Hi\r\nBcc: x", "t")


def test_compose_builds_a_seven_bit_multipart_message_with_the_stable_id() -> None:
    config = SmtpSettings(from_address="noreply@ils.example", from_name="ILS")
    out = compose(
        draft("ann@example.com"),
        Body(text="Axis 90°\n", html="<p>°</p>"),
        config=config,
        message_id="<k@ils.example>",
        date=datetime(2026, 11, 28, tzinfo=UTC),
        file_stem="f",
        job_ref="email/x/1",
    )
    assert all(byte < 128 for byte in out.data)
    assert out.message["Subject"] == "Hi Bcc: x"  # a header stays one line
    assert out.message["Message-ID"] == "<k@ils.example>"
    assert out.message["Reply-To"] == "Clear View Lab <lab@example.com>"
    assert (out.sender, out.recipient) == ("noreply@ils.example", "ann@example.com")
    assert message_id_domain(config) == "ils.example"
    assert message_id_domain(SmtpSettings(message_id_domain="mid.example")) == "mid.example"


def test_composing_leaves_no_classes_for_the_collector() -> None:
    """The standard library's header registry makes a new class for every header it
    builds: nine a message, each garbage in a cycle that only the collector frees,
    the largest share of what the server's young collections found (docs/performance.md)."""
    config = SmtpSettings(from_address="noreply@ils.example", from_name="ILS")

    def one(n: int) -> None:
        compose(
            draft(f"ann{n}@example.com"),
            Body(text="t\n", html="<p>h</p>"),
            config=config,
            message_id=f"<{n}@ils.example>",
            date=datetime(2026, 11, 28, tzinfo=UTC),
            file_stem="f",
            job_ref="email/x/1",
        )

    one(0)  # whatever is made once, on first use, is not what this counts
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for n in range(1, 11):
            one(n)
        gc.collect()
        classes = [o for o in gc.garbage if isinstance(o, type)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert classes == []


def test_an_unusable_address_is_missing_data() -> None:
    with pytest.raises(MailDataMissingError, match="recipient address"):
        compose(
            draft("not an address"),
            Body("t", "h"),
            config=SmtpSettings(),
            message_id="<k@x>",
            date=datetime(2026, 11, 28, tzinfo=UTC),
            file_stem="f",
            job_ref="j",
        )


def test_message_keys_differ_by_job_payload_and_recipient() -> None:
    base = ("email", "1", "order-confirmation", '{"a":1}', "user:1")
    key = message_key(*base)
    assert key == message_key(*base) and len(key) == 32
    for i, other in enumerate(("x", "2", "order-shipment", '{"a":2}', "user:2")):
        changed = list(base)
        changed[i] = other
        assert message_key(*changed) != key


def test_briefing_sections_read_what_they_can() -> None:
    assert briefing_sections({"metrics": [{"label": "Orders", "value": 3}, {"x": 1}]}) == {
        "summary": None,
        "metrics": [("Orders", "3")],
        "highlights": [],
        "recommendations": [],
    }
    assert briefing_sections("not an object")["metrics"] == []
    assert briefing_sections({"highlights": "one"})["highlights"] == ["one"]


def test_order_mails_print_lens_labels_degree_and_prism_signs() -> None:
    """The order e-mail reads like the documents (issue 20): labels, not codes, for the
    lens type, coatings and tint; the axis with its degree sign; every prism component
    with the prism sign and its base."""
    from ils.domain.orders import Order, PrismBase
    from ils.workers.email.content import order_items, prescription

    order = Order(
        lens_design="progressive",
        lens_material="high_index",
        lens_index=Decimal("1.67"),
        coatings=["anti_reflective", "hard_coat"],
        tint="photochromic_grey",
        right_sphere=Decimal("-2.25"),
        right_cylinder=Decimal("-0.75"),
        right_axis=175,
        right_prism=Decimal("1.50"),
        right_prism_base=PrismBase("in"),
        right_prism_vertical=Decimal("0.50"),
        right_prism_vertical_base=PrismBase("up"),
        left_sphere=Decimal("-2.00"),
        left_axis=5,
        left_prism=Decimal("1.00"),
        left_prism_base=PrismBase("out"),
    )
    items = "\n".join(order_items(order))
    for code in ("high_index", "anti_reflective", "hard_coat", "photochromic_grey"):
        assert code not in items
    assert "Anti-reflective" in items and "Hard coat" in items
    eyes = {eye["label"]: eye for eye in prescription(order)["eyes"]}
    assert eyes["R"]["axis"] == "175°"
    assert eyes["R"]["prism"] == "1.50Δ base in, 0.50Δ base up"
    assert eyes["L"]["axis"] == "5°"
    assert eyes["L"]["prism"] == "1.00Δ base out"
