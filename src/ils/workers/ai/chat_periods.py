"""The period a chat question asks about: "last month", "this week", "since 1 Nov"...

Chat answers quote figures for a span of local dates (:class:`~ils.workers.ai.facts.Period`).
People name that span in many ways; this module turns the usual English ones into a
period and a label that says, in the answer, which dates were counted, so a reader
can check a figure instead of guessing what "last week" meant.

Conventions (written down because each has a reasonable alternative):

* weeks start on Monday (the UK calendar the platform's companies use);
* "this week/month/year" ends today, not at the end of the calendar span;
* "the week of 23 November" (or "week beginning", "w/c") is the Monday-to-Sunday
  week holding that date, and "the week ending 27 November" the seven days ending
  then; either is cut at today;
* "the last N days" ends today and includes it: N local dates;
* a date or month without a year is the latest one not after today ("in December"
  asked in November is last December).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType
from typing import Final

from ils.workers.ai.facts import Period, short_date

_MONTHS: Final = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
#: A month name or its usual abbreviation ("sept" included).
_MONTH_WORD: Final = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_MONTH: Final = f"({_MONTH_WORD})"
#: ``1 Nov``, ``1st November 2026``, ``Nov 1``, ``November 1st, 2026``, ``2026-11-01``,
#: ``01/11/2026`` (day first, as in the UK). The final ``\b`` keeps "March 2026" from
#: reading as 20 March.
_DATE: Final = (
    rf"(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_WORD}(?:,?\s+\d{{4}})?"
    rf"|{_MONTH_WORD}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
    r"|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4})\b"
)
_RANGE: Final = re.compile(rf"\b(?:from|between)\s+({_DATE})\s+(?:to|until|till|and)\s+({_DATE})")
_SINCE: Final = re.compile(rf"\b(?:since|from)\s+({_DATE})")
_SINCE_MONTH: Final = re.compile(
    rf"\b(?:since|from)\s+(?:the\s+start\s+of\s+)?{_MONTH}(?:\s+(\d{{4}}))?\b"
)
_ON_DATE: Final = re.compile(rf"\b({_DATE})")
_WEEK_OF: Final = re.compile(
    rf"\b(?:week\s+(?:of|beginning|commencing|starting)|w/c|wc)\s+(?:the\s+)?({_DATE})"
)
_WEEK_ENDING: Final = re.compile(rf"\bweek\s+(?:ending|to)\s+(?:the\s+)?({_DATE})")
_LAST_N: Final = re.compile(
    r"\b(?:last|past|previous)\s+(\d{1,4}|a|one|two|three|four|five|six|seven|eight|nine|ten"
    r"|twelve|fourteen)\s+(day|week|month)s?\b"
)
_AGO: Final = re.compile(r"\b(\d{1,3})\s+days?\s+ago\b")
#: A month alone needs a preposition or a year: "may" and "march" are also verbs.
_NAMED_MONTH: Final = re.compile(
    rf"\b(?:in|during|for|over|of|throughout|about)\s+{_MONTH}(?:\s+(\d{{4}}))?\b"
    rf"|\b{_MONTH}\s+(\d{{4}})\b"
)
_WORD_NUMBERS: Final = MappingProxyType(
    {
        "a": 1,
        "one": 1,
        "two": 2,
        "three": 3,
        "four": 4,
        "five": 5,
        "six": 6,
        "seven": 7,
        "eight": 8,
        "nine": 9,
        "ten": 10,
        "twelve": 12,
        "fourteen": 14,
    }
)


@dataclass(frozen=True, slots=True)
class AskedPeriod:
    """A period and how an answer names it, preposition included: ``in October 2026``,
    ``yesterday (27 Nov 2026)``, ``in the last 30 days (30 Oct 2026 to 28 Nov 2026)``."""

    period: Period
    label: str


def month_name(day: date) -> str:
    """``October 2026``."""
    return f"{_MONTHS[day.month - 1].capitalize()} {day.year}"


def whole_month(year: int, month: int) -> Period:
    """The calendar month ``month`` of ``year``."""
    first = date(year, month, 1)
    after = date(year + month // 12, month % 12 + 1, 1)
    return Period(first, after - timedelta(days=1))


def this_month(today: date) -> AskedPeriod:
    """The 1st of this month to today (the default of money and examination questions)."""
    return _named("this month", Period(today.replace(day=1), today))


def last_days(today: date, days: int) -> AskedPeriod:
    """The last ``days`` local dates, today included (the default of rates and rankings)."""
    return _named(f"in the last {days} days", Period(today - timedelta(days=days - 1), today))


def _named(name: str, period: Period) -> AskedPeriod:
    return AskedPeriod(period, f"{name} ({period.label()})")


def _month(period: Period) -> AskedPeriod:
    return AskedPeriod(period, f"in {month_name(period.start)}")


def _relative(text: str, today: date) -> AskedPeriod | None:
    """Periods named relative to today: today, yesterday, this/last week, month, year."""
    monday = today - timedelta(days=today.weekday())
    before = today.replace(day=1) - timedelta(days=1)
    year = today.year
    last_year = Period(date(year - 1, 1, 1), date(year - 1, 12, 31))
    rules: tuple[tuple[str, Callable[[], AskedPeriod]], ...] = (
        (r"today", lambda: _named("today", Period.day(today))),
        (r"yesterday", lambda: _named("yesterday", Period.day(today - timedelta(days=1)))),
        (r"tomorrow", lambda: _named("tomorrow", Period.day(today + timedelta(days=1)))),
        (r"this\s+week", lambda: _named("this week", Period(monday, today))),
        (
            r"(?:last|previous)\s+week",
            lambda: _named("last week", Period(monday - timedelta(days=7), monday - timedelta(1))),
        ),
        (r"this\s+month|month\s+to\s+date|mtd", lambda: this_month(today)),
        (r"(?:last|previous)\s+month", lambda: _month(whole_month(before.year, before.month))),
        (
            r"this\s+year|year\s+to\s+date|ytd",
            lambda: _named("this year", Period(date(year, 1, 1), today)),
        ),
        (
            r"(?:last|previous)\s+year",
            lambda: AskedPeriod(last_year, f"in {year - 1}"),
        ),
    )
    for pattern, make in rules:
        if re.search(rf"\b(?:{pattern})\b", text):
            return make()
    return None


def _last_n(text: str, today: date) -> AskedPeriod | None:
    """``last 30 days``, ``past two weeks``, ``previous 3 months`` (ending today)."""
    found = _LAST_N.search(text)
    if found is None:
        return None
    count = _WORD_NUMBERS.get(found[1]) or int(found[1])
    if count < 1:
        return None
    if found[2] == "month":
        period = Period(_months_back(today, count) + timedelta(days=1), today)
        return _named(f"in the last {count} month{'s' if count > 1 else ''}", period)
    return last_days(today, count * (7 if found[2] == "week" else 1))


def _ago(text: str, today: date) -> AskedPeriod | None:
    """``3 days ago``: that single day."""
    found = _AGO.search(text)
    if found is None:
        return None
    day = today - timedelta(days=int(found[1]))
    return AskedPeriod(Period.day(day), f"on {short_date(day)}")


def _months_back(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier (the month's last day if shorter)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, whole_month(year, month + 1).end.day))


def _month_number(name: str) -> int:
    return next(i for i, full in enumerate(_MONTHS, 1) if full.startswith(name[:3]))


def parse_date(text: str, today: date) -> date | None:
    """One date as people write it; without a year, the latest such date not after
    today. ``None`` when it is no real date (31 Feb)."""
    text = text.strip()
    try:
        if iso := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text):
            return date(int(iso[1]), int(iso[2]), int(iso[3]))
        if uk := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text):
            return date(int(uk[3]), int(uk[2]), int(uk[1]))
        numbers = [int(n) for n in re.findall(r"\d+", text)]
        names = [w for w in re.findall(r"[a-z]+", text) if w not in ("st", "nd", "rd", "th", "of")]
        month = _month_number(names[0])
        if len(numbers) > 1:
            return date(numbers[1], month, numbers[0])
        found = date(today.year, month, numbers[0])
        return found if found <= today else date(today.year - 1, month, numbers[0])
    except (ValueError, IndexError, StopIteration):
        return None


def _week(text: str, today: date) -> AskedPeriod | None:
    """``the week of 23 Nov``: Monday to Sunday around that date; ``week ending 27 Nov``:
    the seven days ending then. Cut at today: later days have no figures yet."""
    if found := _WEEK_OF.search(text):
        day = parse_date(found[1], today)
        if day is None:
            return None
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=6)
    elif found := _WEEK_ENDING.search(text):
        end_day = parse_date(found[1], today)
        if end_day is None:
            return None
        start, end = end_day - timedelta(days=6), end_day
    else:
        return None
    if start > today:
        return None
    period = Period(start, min(end, today))
    return AskedPeriod(period, f"in the week of {short_date(start)} ({period.label()})")


def _explicit(text: str, today: date) -> AskedPeriod | None:
    """Ranges and single dates written out: from/between, since, on."""
    if found := _RANGE.search(text):
        start, end = parse_date(found[1], today), parse_date(found[2], today)
        if start and end and start <= end:
            return AskedPeriod(Period(start, end), f"from {Period(start, end).label()}")
    if found := _SINCE.search(text):
        start = parse_date(found[1], today)
        if start and start <= today:
            return AskedPeriod(Period(start, today), f"from {Period(start, today).label()}")
    if found := _SINCE_MONTH.search(text):
        month = _month_number(found[1])
        start = date(int(found[2]) if found[2] else today.year - (month > today.month), month, 1)
        if start > today:
            return None
        return AskedPeriod(Period(start, today), f"from {Period(start, today).label()}")
    if (found := _ON_DATE.search(text)) and (day := parse_date(found[1], today)):
        return AskedPeriod(Period.day(day), f"on {short_date(day)}")
    return None


def _named_month(text: str, today: date) -> AskedPeriod | None:
    """``in October``, ``October 2025``: the whole calendar month (to today if current)."""
    found = _NAMED_MONTH.search(text)
    if found is None:
        return None
    month = _month_number(found[1] or found[3])
    year_text = found[2] or found[4]
    year = int(year_text) if year_text else today.year
    if not year_text and month > today.month:
        year -= 1
    period = whole_month(year, month)
    if period.start > today:
        return None
    if period.end >= today:
        return _named(f"in {month_name(period.start)} so far", Period(period.start, today))
    return _month(period)


def find_period(question: str, today: date) -> AskedPeriod | None:
    """The period ``question`` names, ``None`` when it names none (the intent then
    picks its default). Written-out dates win over relative words: "since 1 Nov this
    year" means since 1 Nov."""
    text = " ".join(question.lower().split())
    for parse in (_week, _explicit, _last_n, _ago, _relative, _named_month):
        if found := parse(text, today):
            return found
    return None
