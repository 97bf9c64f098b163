"""What a chat question asks: its intent, period, order numbers, statuses, products.

Questions are understood by rules (regular expressions over English), not by a
model, so what was understood can be read, tested and explained: the first intent
rule that matches wins, in an order that puts the specific before the general
("overdue invoices" is about money before "overdue" is about orders). Questions
the rules do not recognise are ``unknown`` and declined rather than guessed at.

Some questions are declined whatever they match (:func:`refusal_reason`): clinical
advice, individual people, and topics that are not the company's data at all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from ils.domain.companies import CompanyKind
from ils.domain.orders import OrderStatus
from ils.workers.ai.chat_periods import AskedPeriod, find_period

#: Orders that still need work (what "open orders" means).
OPEN: Final = (
    OrderStatus.SUBMITTED,
    OrderStatus.ACCEPTED,
    OrderStatus.IN_PRODUCTION,
    OrderStatus.QUALITY_CHECK,
    OrderStatus.ON_HOLD,
)
_ORDER_NUMBER: Final = re.compile(r"\bord[-\s]?(\d{4})[-\s]?(\d{1,9})\b")
_TOKEN: Final = re.compile(r"\d+(?:\.\d+)?|[a-z]+")
#: Statuses named in a question; "not shipped", "open" and the like mean every open one.
_OPEN_WORDS: Final = re.compile(
    r"\b(?:open|in\s+progress|active|unfinished|pending|wip|outstanding|not\s+(?:yet\s+)?"
    r"(?:shipped|finished|done|complete))\b"
)
_STATUS_WORDS: Final = (
    (re.compile(r"\bin\s+production\b|\bbeing\s+made\b|\bproducing\b"), OrderStatus.IN_PRODUCTION),
    (re.compile(r"\bquality\s+check|\bqc\b|\binspection\b"), OrderStatus.QUALITY_CHECK),
    (re.compile(r"\bon\s+hold\b|\bheld\b|\bpaused\b"), OrderStatus.ON_HOLD),
    (re.compile(r"\bship(?:ped|ping)?\b|\bdispatch(?:ed)?\b"), OrderStatus.SHIPPED),
    (re.compile(r"\bdeliver(?:ed)?\b"), OrderStatus.DELIVERED),
    (re.compile(r"\bcancel(?:l?ed|l?ations?)?\b"), OrderStatus.CANCELLED),
    (re.compile(r"\baccepted\b"), OrderStatus.ACCEPTED),
    (re.compile(r"\bsubmitted\b|\bnot\s+(?:yet\s+)?accepted\b"), OrderStatus.SUBMITTED),
)
#: "Orders received last week that are now shipped", not "orders shipped last week".
_ARRIVAL_WORDS: Final = re.compile(r"\b(?:receiv|plac|creat|came|come|new\b)")
#: Money the company owes, rather than money owed to it.
_PAYABLE_WORDS: Final = re.compile(
    r"\b(?:we|i)\s+owe\b|\bpayables?\b|\bour\s+bills?\b|\bto\s+pay\b"
)
_RECEIVABLE_WORDS: Final = re.compile(r"\bowe[ds]?\s+(?:us|me)\b|\bcustomers?\b|\breceivables?\b")
#: The series of the anomaly scan, by the words that name them.
_METRICS: Final = (
    ("revenue", re.compile(r"\brevenue|\bsales\b|\bmoney\b|\bincome\b")),
    ("orders", re.compile(r"\borders?\b")),
    ("inventory", re.compile(r"\bstock\b|\binventory\b|\bunits?\b")),
    ("patients", re.compile(r"\bpatients?\b|\bexam")),
)

#: Declined before anything is read: clinical advice, individual people, other topics.
_MEDICAL: Final = re.compile(
    r"\bdiagnos|\bsymptom|\btreat(?:ment)?\b|\bglaucoma|\bcataract|\bmacular|\bconjunctivitis"
    r"|\beye\s+drops|\bmedic(?:ation|ine|al)|\bdisease|\binfection|\bis\s+it\s+safe\b"
    r"|\bshould\s+(?:i|he|she|they)\s+(?:use|wear|take|apply|see\s+a|worry)\b"
    r"|\bheadaches?\b|\bblurr|\bpainful|\bsore\s+eyes?"
)
_PERSONAL: Final = re.compile(
    r"\b(?:mr|mrs|ms|miss|mx|dr)\.?\s+[a-z]{2,}|\bpatient(?:'s)?\s+(?:called|named)\b"
    r"|\b(?:his|her)\s+(?:prescription|rx|eyes?|exam|examination|results?|address|phone|order)"
    r"|\bprescriptions?\s+(?:of|for)\b|\bdate\s+of\s+birth\b|\bdob\b|\bhome\s+address"
    r"|\bpatients?'?\s+(?:names?|details|list|address(?:es)?|phones?|emails?|records?)\b"
    r"|\b(?:list|names)\s+(?:of\s+)?(?:all\s+|the\s+|our\s+)?patients\b"
)
#: A capitalised first and last name with a possessive, as people write about a person
#: (read from the question as typed, before lower-casing).
_PERSON: Final = re.compile(r"\b[A-Z][a-z]+\s+[A-Z][a-z]+(?:'|\u2019)s\b")
_OFF_TOPIC: Final = re.compile(
    r"\bweather\b|\brain(?:ing|y)?\b|\bsunny\b|\bnews\b|\bfootball\b|\brecipe|\bjoke|\bpoem"
    r"|\bcapital\s+of\b|\bpresident\b|\bprime\s+minister\b|\bbitcoin|\bcrypto|\bshare\s+price"
    r"|\bstock\s+(?:price|market|exchange)|\btranslate\b|\bhoroscope|\blottery\b|\bmovies?\b"
    r"|\bwho\s+(?:is|was|won)\b(?!\s+(?:our|my)\b)|\bmeaning\s+of\s+life\b"
)
_INTENT_RULES: Final = tuple(
    (intent, re.compile(pattern))
    for intent, pattern in (
        (
            "overdue-invoices",
            r"\b(?:overdue|late|past[- ]due)\s+(?:invoices?|payments?|bills?)"
            r"|\b(?:invoices?|bills?)\b.*\b(?:overdue|late|past\s+(?:their\s+)?due)\b"
            r"|\bpaid\s+late\b|\bpaying\s+late\b",
        ),
        (
            "by-company",
            r"\b(?:top|best|biggest|largest|most|which)\s+(?:\w+\s+)?(?:customers?|practices?"
            r"|clients?|labs?|suppliers?)\b|\b(?:per|by|each)\s+(?:customer|practice|client|lab)\b"
            r"|\bour\s+customers\b|\bwho\s+(?:orders|buys|spends)\s+(?:the\s+)?most\b",
        ),
        (
            "lens-mix",
            r"\blens(?:es)?\s+(?:types?|designs?|kinds?)\b|\b(?:types?|kinds?)\s+of\s+lens"
            r"|\bcoatings?\b|\bcoated\b|\b(?:anti-?reflect\w*|ar\s+coat\w*)",
        ),
        (
            "anomalies",
            r"\banomal|\bunusual|\boutliers?\b|\bspikes?\b|\bunexpected|\babnormal"
            r"|\bzero\s+(?:days?|activity)",
        ),
        (
            "reorder",
            r"\bre-?order|\brestock|\b(?:order|buy|purchase)\s+more\b|\brun(?:ning)?\s+out\b"
            r"|\bstock[- ]?outs?\b",
        ),
        (
            "forecast",
            r"\bforecast|\bpredict|\bprojected\b|\bdemand\b"
            r"|\bexpect(?:ed)?\s+to\s+(?:use|sell|need)|\bnext\s+(?:\d+\s+)?(?:days?|weeks?)\b",
        ),
        (
            "receivables",
            r"\bunpaid\b|\bowe[ds]?\b|\breceivables?\b|\bpayables?\b|\bdebtors?\b"
            r"|\boutstanding\s+(?:invoices?|balance)"
            r"|\bnot\s+(?:yet\s+)?paid\b|\bbills?\b",
        ),
        ("payments", r"\bpayments?\b|\bpaid\b|\bcash\s+(?:in|received|collected)|\bcollected\b"),
        (
            "revenue",
            r"\brevenue|\bturnover\b|\bincome\b|\bearn|\binvoiced\b|\bbilled\b|\btakings\b"
            r"|\b(?:did|have)\s+we\s+invoice\b"
            r"|\bsales\s+(?:figures?|value|total)|\bhow\s+much\s+(?:money\s+)?(?:did|have)\s+we"
            r"\s+(?:make|made|earn|earned|take|taken|invoice|invoiced|bill|billed)\b",
        ),
        (
            "turnaround",
            r"\bturn-?\s?around|\bhow\s+long\b|\bdays?\s+to\s+(?:ship|make|complete|deliver)"
            r"|\bcycle\s+time",
        ),
        ("remake-rate", r"\bre-?makes?\b|\bremade\b|\bredo(?:ne|s)?\b"),
        ("overdue-orders", r"\boverdue\b|\blate\b|\bpast\s+(?:their\s+)?due|\bbehind\s+schedule"),
        ("orders-due", r"\bdue\b"),
        (
            "examinations",
            r"\bexam(?:s|inations?)?\b|\beye\s+tests?\b|\bsight\s+tests?\b"
            r"|\bpatients?\s+(?:did\s+we\s+)?(?:see|seen|examined)\b",
        ),
        (
            "top-products",
            r"\btop\b|\bbest[- ]sell|\bmost\s+(?:used|popular|sold|ordered)\b|\bbusiest\b"
            r"|\bfastest[- ]moving\b|\b(?:use[ds]?|using|usage)\b|\bconsum",
        ),
        (
            "low-stock",
            r"\blow\s+(?:on\s+)?stock|\b(?:stock|running|run)\s+low\b|\bbelow\s+(?:the\s+)?reorder"
            r"|\bshort\s+of\b|\blow\b",
        ),
        (
            "stock-level",
            r"\bstock|\binventory\b|\bon\s+hand\b|\bin\s+store\b"
            r"|\bhow\s+many\b.*\b(?:blanks?|frames?|coatings?|compound)\b"
            r"|^(?!.*\border).*\b(?:enough|do\s+we\s+have|have\s+we\s+got)\b",
        ),
        (
            "orders-count",
            r"\border|\bjobs?\b|\bin\s+production\b|\bquality\s+check|\bon\s+hold\b|\bshipped\b"
            r"|\bdispatched\b|\bdelivered\b|\bcancell?ed\b",
        ),
    )
)


@dataclass(frozen=True, slots=True)
class Question:
    """What the rules understood of a question."""

    text: str  # lower-cased, whitespace collapsed
    today: date
    period: AskedPeriod | None
    order_numbers: tuple[str, ...]
    statuses: tuple[OrderStatus, ...]
    #: Written like a person's name: "Jane Smith's", "Mrs Patel" (see ``_PERSON``).
    names_person: bool = False


def understand(
    question: str, today: date, *, own_name: str = "", partner_names: Sequence[str] = ()
) -> Question:
    """Period, order numbers and statuses named in ``question``; ``own_name`` (the asking
    company's) and ``partner_names`` (companies it trades with) are no person's names,
    even with a possessive ("Harbour Eyecare's orders")."""
    text = " ".join(question.lower().split())
    numbers = tuple(dict.fromkeys(f"ORD-{y}-{int(n):06d}" for y, n in _ORDER_NUMBER.findall(text)))
    if _OPEN_WORDS.search(text):
        statuses: tuple[OrderStatus, ...] = OPEN
    else:
        statuses = tuple(status for pattern, status in _STATUS_WORDS if pattern.search(text))
    period = find_period(text, today)
    for name in (own_name, *partner_names):
        question = question.replace(name, "") if name else question
    person = _PERSON.search(question)
    return Question(text, today, period, numbers, statuses, person is not None)


def classify(question: Question) -> str:
    """The intent: an order number means its status; else the first rule that matches."""
    if question.order_numbers:
        return "order-status"
    for intent, pattern in _INTENT_RULES:
        if pattern.search(question.text):
            return intent
    return "unknown"


def match_products(text: str, items: Sequence[tuple[str, str]]) -> list[int]:
    """Indexes of the ``(sku, name)`` items ``text`` names: a SKU written out, else the
    names sharing most of their distinctive words with it, ties all returned.

    Each word of a name weighs its inverse document frequency over ``items``: a word
    in many names ("blank") says little about which one is meant, a rare one
    ("bifocal") a lot. A name matches when at least half its weight is in the text.
    """
    by_sku = [i for i, (sku, _) in enumerate(items) if _sku_pattern(sku).search(text)]
    if by_sku:
        return by_sku
    words = set(_tokens(text))
    names = [set(_tokens(name.lower())) for _, name in items]
    scores = [_coverage(name, words, names) for name in names]
    best = max(scores, default=0.0)
    return [i for i, score in enumerate(scores) if score >= 0.5 and score > best - 1e-9]


def _coverage(name: set[str], words: set[str], names: list[set[str]]) -> float:
    """Share of the weight of ``name``'s words found in ``words``."""
    weight = {t: math.log((len(names) + 1) / sum(t in other for other in names)) for t in name}
    total = sum(weight.values())
    return sum(weight[t] for t in name & words) / total if total else 0.0


def _sku_pattern(sku: str) -> re.Pattern[str]:
    """``SV-160`` as people type it: ``sv-160``, ``sv 160``, ``sv160``."""
    parts = [re.escape(p) for p in re.split(r"[^a-z0-9]+", sku.lower()) if p]
    return re.compile(r"\b" + r"[-\s_]?".join(parts) + r"\b")


def _tokens(text: str) -> list[str]:
    """Words and numbers, compared loosely: "1.60" is "1.6", "blanks" is "blank"."""
    found = []
    for token in _TOKEN.findall(text):
        if "." in token:
            token = token.rstrip("0").rstrip(".")
        elif len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]
        found.append(token)
    return found


def refusal_reason(question: Question) -> str | None:
    """Why the question is declined before any figure is read: ``medical`` (clinical
    advice), ``personal`` (an individual patient or person), ``off-topic``; else ``None``."""
    if _MEDICAL.search(question.text):
        return "medical"
    if question.names_person or _PERSONAL.search(question.text):
        return "personal"
    if _OFF_TOPIC.search(question.text):
        return "off-topic"
    return None


def counts_arrivals(question: Question) -> bool:
    """Whether statuses with a period mean "orders that arrived then and are now in that
    status" rather than "orders that moved to that status then"."""
    return bool(_ARRIVAL_WORDS.search(question.text))


def asks_what_is_owed(question: Question, kind: CompanyKind) -> bool:
    """Whether a money question is about the company's own bills: said so, or asked by a
    practice (which has bills from labs, not customers) without saying otherwise."""
    if _PAYABLE_WORDS.search(question.text):
        return True
    return kind is CompanyKind.PRACTICE and not _RECEIVABLE_WORDS.search(question.text)


def metrics_named(question: Question) -> set[str]:
    """Anomaly series the question names (``revenue``, ``orders``...); empty for all."""
    return {name for name, pattern in _METRICS if pattern.search(question.text)}
