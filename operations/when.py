"""When a schedule runs: 5-field cron expressions and plain forms, in an IANA time zone.

Plain forms: `hourly`, `daily 02:30`, `weekdays 20:00`, `weekends 09:00`,
`every monday 07:00` (or `every mon,thu 07:00`). Times are wall-clock times in
the schedule's zone (UTC by default), converted with zoneinfo. Daylight saving:
- a time that does not exist on the day the clocks go forward (02:30 in
  Europe/Paris on the last Sunday of March) runs once, shifted forward by the
  gap (03:30 local, the same instant as "02:30 in winter time");
- a time that exists twice on the day the clocks go back runs once, at its
  first occurrence (summer time); the repeated hour is not run again, so an
  `hourly` schedule has one run fewer that night (as Vixie cron does).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

EXAMPLES = (
    "`weekdays 20:00`, `daily 02:30`, `every monday 07:00`, `hourly`, "
    'or a quoted cron expression such as `"0 20 * * 1-5"`; add `tz=Europe/Paris` '
    "for a time zone (default UTC)"
)


class WhenError(ValueError):
    """A `when` that cannot be read; the message says why and shows what works."""


# -- cron expressions ------------------------------------------------------------------

_DAY_NAMES = {
    name: index
    for index, names in enumerate(
        (
            ("sun", "sunday"),
            ("mon", "monday"),
            ("tue", "tuesday", "tues"),
            ("wed", "wednesday"),
            ("thu", "thursday", "thur", "thurs"),
            ("fri", "friday"),
            ("sat", "saturday"),
        )
    )
    for name in names
}
_MONTH_NAMES = {
    name: index + 1
    for index, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_MAX_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTH_NAMES),
    ("day of week", 0, 7, _DAY_NAMES),
)
_CRON_WORD = re.compile(r"^[0-9a-zA-Z*/,\-]+$")


@dataclass(frozen=True)
class Cron:
    """A parsed 5-field cron expression (day of week 0 or 7 = Sunday).

    As in Vixie cron, when both day of month and day of week are restricted,
    a day matching either runs.
    """

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def matches(self, day: date) -> bool:
        """Whether the schedule runs on this calendar day."""
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = (day.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday


def _value(text: str, label: str, low: int, high: int, names: dict[str, int]) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not text.isdigit():
        raise WhenError(f"cron {label} `{text}` is not a number")
    number = int(text)
    if not low <= number <= high:
        raise WhenError(f"cron {label} `{text}` is out of range {low}-{high}")
    return number


def _field(text: str, label: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise WhenError(f"cron {label} step `/{step_text}` must be a positive number")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start = _value(first, label, low, high, names)
            end = _value(last, label, low, high, names)
            if end < start:
                raise WhenError(f"cron {label} range `{body}` goes backwards")
        elif body:
            start = end = _value(body, label, low, high, names)
            if step_text:
                end = high
        else:
            raise WhenError(f"cron {label} has an empty part in `{text}`")
        values.update(range(start, end + 1, step))
    return values


def parse_cron(expression: str) -> Cron:
    """Parse `minute hour day-of-month month day-of-week`; WhenError if invalid."""
    parts = expression.split()
    if len(parts) != 5:
        raise WhenError(
            f"a cron expression has 5 fields (minute hour day month weekday); "
            f"`{expression}` has {len(parts)}"
        )
    sets = [_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(0 if d == 7 else d for d in sets[4])
    cron = Cron(
        minutes=tuple(sorted(sets[0])),
        hours=tuple(sorted(sets[1])),
        days=frozenset(sets[2]),
        months=frozenset(sets[3]),
        weekdays=weekdays,
        any_day=parts[2].startswith("*"),
        any_weekday=parts[4].startswith("*"),
    )
    if not cron.any_day and cron.any_weekday:
        possible = any(d <= _MAX_DAYS[m] for m in cron.months for d in cron.days)
        if not possible:
            raise WhenError(f"`{expression}` never runs: no such day in those months")
    return cron


# -- time zones ------------------------------------------------------------------------


def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone `name` (case-insensitive); WhenError naming look-alikes if unknown."""
    names = available_timezones() | {"UTC"}
    by_lower = {n.lower(): n for n in names}
    canonical = by_lower.get(name.strip().lower())
    if canonical is not None:
        try:
            return ZoneInfo(canonical)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    typed = name.strip().lower().replace(" ", "_")
    cities = {n.rsplit("/", 1)[-1].lower(): n for n in sorted(names) if "/" in n}
    hints = [cities[c] for c in difflib.get_close_matches(typed, list(cities), n=3, cutoff=0.7)]
    hints += [by_lower[n] for n in difflib.get_close_matches(typed, list(by_lower), n=3)]
    unique = list(dict.fromkeys(hints))[:3]
    maybe = f"; did you mean {' or '.join(unique)}?" if unique else "."
    raise WhenError(
        f"unknown time zone {name!r}{maybe} Time zones are IANA names such as "
        "Europe/Paris, America/New_York or UTC"
    )


# -- when ------------------------------------------------------------------------------

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _clock_time(text: str, form: str) -> tuple[int, int]:
    match = _TIME.match(text)
    if match is None:
        raise WhenError(
            f"`{text}` is not a time of day: use 24-hour HH:MM, "
            f"e.g. `{form} 20:00` or `{form} 07:30`"
        )
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class When:
    """When a schedule runs: its text as typed (normalized), the cron rule and the zone."""

    text: str
    cron: Cron
    tz: str

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.tz)

    def describe(self) -> str:
        """`weekdays 20:00 (Europe/Paris)`."""
        text = f'"{self.text}"' if _looks_like_cron(self.text.split()) else self.text
        return f"{text} ({self.tz})"

    def next_after(self, after: float) -> float:
        """The first run strictly after the epoch `after` (UTC seconds); DST rules above."""
        zone = self.zone
        day = datetime.fromtimestamp(after, zone).date()
        for _ in range(366 * 8 + 2):
            if self.cron.matches(day):
                best: float | None = None
                for hour in self.cron.hours:
                    for minute in self.cron.minutes:
                        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                        instant = local.timestamp()  # fold=0: first occurrence / shifted gap
                        if instant > after and (best is None or instant < best):
                            best = instant
                if best is not None:
                    return best
            day += timedelta(days=1)
        raise WhenError(f"`{self.text}` never runs")


def _looks_like_cron(words: Sequence[str]) -> bool:
    return len(words) == 5 and all(_CRON_WORD.match(w) for w in words)


def parse_when(words: Sequence[str], tz: str | None = "UTC") -> When:
    """Read a `when` (cron or plain form) in the zone `tz`; WhenError with an example if not."""
    zone = zone_named(tz or "UTC").key
    if len(words) == 1 and len(words[0].split()) > 1:
        words = words[0].split()  # a quoted cron expression
    if not words:
        raise WhenError(f"say when it runs: {EXAMPLES}")
    lowered = [w.lower() for w in words]
    head = lowered[0]
    if _looks_like_cron(words) and head not in ("every", "daily", "weekdays", "weekends"):
        expression = " ".join(words)
        return When(expression, parse_cron(expression), zone)
    if head == "hourly":
        if len(words) != 1:
            raise WhenError("`hourly` runs at minute 0 of every hour and takes nothing more")
        return When("hourly", parse_cron("0 * * * *"), zone)
    days = {"daily": "*", "weekdays": "1-5", "weekends": "0,6"}
    if head in days:
        if len(words) != 2:
            raise WhenError(f"`{head}` takes a time of day, e.g. `{head} 20:00`")
        hour, minute = _clock_time(words[1], head)
        return When(
            f"{head} {hour:02d}:{minute:02d}",
            parse_cron(f"{minute} {hour} * * {days[head]}"),
            zone,
        )
    if head == "every":
        if len(words) != 3:
            raise WhenError("`every` takes a day and a time, e.g. `every monday 07:00`")
        day_names = [d for d in lowered[1].split(",") if d]
        unknown = [d for d in day_names if d not in _DAY_NAMES and d not in ("day", "weekday")]
        if unknown or not day_names:
            hint = difflib.get_close_matches(unknown[0] if unknown else "", list(_DAY_NAMES), n=1)
            maybe = f" (did you mean `{hint[0]}`?)" if hint else ""
            raise WhenError(
                f"`{words[1]}` is not a day of the week{maybe}; e.g. `every monday 07:00` "
                "or `every mon,thu 07:00`"
            )
        hour, minute = _clock_time(words[2], f"every {lowered[1]}")
        if "day" in day_names:
            spec = "*"
        elif "weekday" in day_names:
            spec = "1-5"
        else:
            spec = ",".join(str(n) for n in sorted({_DAY_NAMES[d] for d in day_names}))
        return When(
            f"every {lowered[1]} {hour:02d}:{minute:02d}",
            parse_cron(f"{minute} {hour} * * {spec}"),
            zone,
        )
    if len(words) == 1 and _CRON_WORD.match(words[0]):
        raise WhenError(f"cannot read `{words[0]}` as a schedule: use {EXAMPLES}")
    if len(words) in (4, 6) or (len(words) == 5 and not _looks_like_cron(words)):
        try:
            parse_cron(" ".join(words))
        except WhenError as exc:
            raise WhenError(f"{exc}; {EXAMPLES}") from None
    raise WhenError(f"cannot read `{' '.join(words)}` as a schedule: use {EXAMPLES}")


def show_time(epoch: float, tz: str) -> str:
    """`Mon 2025-03-31 20:00 CEST` in the zone `tz`."""
    return datetime.fromtimestamp(epoch, ZoneInfo(tz)).strftime("%a %Y-%m-%d %H:%M %Z")


def show_utc(epoch: float) -> str:
    """`2025-03-31 18:00 UTC`."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
