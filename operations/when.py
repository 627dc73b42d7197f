"""When a schedule runs: 5-field cron expressions and plain forms, in an IANA time zone.

Cron expressions are read and iterated by croniter; the plain forms are written
as cron expressions; this module adds the time zone and the daylight-saving rule.

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

from croniter import CroniterBadDateError, CroniterError, croniter

EXAMPLES = (
    "`weekdays 20:00`, `daily 02:30`, `every monday 07:00`, `hourly`, "
    'or a quoted cron expression such as `"0 20 * * 1-5"`; add `tz=Europe/Paris` '
    "for a time zone (default UTC)"
)


class WhenError(ValueError):
    """A `when` that cannot be read; the message says why and shows what works."""


# -- cron expressions (croniter) -------------------------------------------------------

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
_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day of week", "0-7 or sun-sat, 0 and 7 being Sunday"),
)
_CRON_WORD = re.compile(r"^[0-9a-zA-Z*/,\-]+$")
_NEVER = datetime(2000, 1, 1)  # any start: a valid expression runs within croniter's horizon


def parse_cron(expression: str) -> str:
    """Check a 5-field cron expression (`minute hour day-of-month month day-of-week`) with
    croniter and return it normalized; WhenError naming the field that is wrong, or saying
    it never runs.

    As in Vixie cron (and croniter), when both day of month and day of week are
    restricted, a day matching either runs.
    """
    parts = expression.split()
    if len(parts) != 5:
        raise WhenError(
            f"a cron expression has 5 fields (minute hour day month weekday); "
            f"`{expression}` has {len(parts)}"
        )
    normalized = " ".join(parts)
    try:
        croniter(normalized, _NEVER)
    except CroniterError:
        for index, part in enumerate(parts):
            alone = ["*"] * 5
            alone[index] = part
            try:
                croniter(" ".join(alone), _NEVER)
            except CroniterError:
                label, allowed = _FIELDS[index]
                raise WhenError(
                    f"cron {label} `{part}` is not valid: it takes {allowed}, "
                    "`*`, lists (`1,3`), ranges (`1-5`) and steps (`*/15`)"
                ) from None
        raise WhenError(f"`{expression}` is not a cron expression") from None
    try:
        croniter(normalized, _NEVER).get_next(datetime)
    except CroniterBadDateError:
        raise WhenError(f"`{expression}` never runs: no such day in those months") from None
    return normalized


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
    """When a schedule runs: its text as typed (normalized), its cron expression and zone."""

    text: str
    cron: str
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
        """The first run strictly after the epoch `after` (UTC seconds); DST rules above.

        croniter lists the matching wall-clock times of each day (naive, so it
        knows nothing of DST); each becomes an instant with `fold=0`, which is
        the rule of the module docstring: a time in the spring-forward gap
        lands one gap later, a repeated time at its first occurrence. The
        earliest instant after `after` on the first day that has one wins.
        """
        zone = self.zone
        day = datetime.fromtimestamp(after, zone).date()
        times = croniter(self.cron, datetime(day.year, day.month, day.day) - timedelta(seconds=1))
        best: tuple[float, date] | None = None  # (instant, its local day)
        try:
            while True:
                local = times.get_next(datetime)
                if best is not None and local.date() != best[1]:
                    return best[0]
                instant = local.replace(tzinfo=zone).timestamp()
                if instant > after and (best is None or instant < best[0]):
                    best = (instant, local.date())
        except CroniterBadDateError:
            raise WhenError(f"`{self.text}` never runs") from None


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
