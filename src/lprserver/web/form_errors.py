"""The shared services' input errors on the pages, in the page's language (SPEC §13).

The services raise their errors in English (the JSON API shows them as they are). A page shows them
translated: each message the services send is matched here by a pattern whose named parts fill the
translated message (msgid = the service's own English words, so an English page reads as the API), and
a message no pattern knows is told by its field. Field names in the messages (valid_from …) are
translated as msgids of their own."""

import re
from collections.abc import Callable

from flask_babel import gettext as _

Rule = tuple[re.Pattern, Callable[..., str]]


def rule(pattern: str, message: Callable[..., str]) -> Rule:
    return re.compile(pattern, re.DOTALL), message


def _field(name: str) -> str:
    """A field's name as the messages say it: the name itself in English, the form's label in Thai."""
    names = {
        "since": _("since"), "until": _("until"), "min_confidence": _("min_confidence"),
        "valid_from": _("valid_from"), "valid_until": _("valid_until"), "name": _("name"),
        "notes": _("notes"), "plate": _("plate"), "group": _("group"), "province_code": _("province_code"),
        "expires_at": _("expires_at"), "reason": _("reason"), "plate_number": _("plate"),
    }
    return names.get(name, name)


# Said by more than one service (records.province_error, times.in_years).
COMMON: tuple[Rule, ...] = (
    rule(r"(?P<name>\w+):? (?P<code>'.*') is not a Thai province's code: use ISO 3166-2:TH, such as TH-10 "
         r"\(Bangkok\)",
         lambda name, code: _("%(field)s %(code)s is not a Thai province's code: use ISO 3166-2:TH, such as "
                              "TH-10 (Bangkok)", field=_field(name), code=code)),
    rule(r"(?P<name>\w+) must lie in the years (?P<first>\d+)-(?P<last>\d+)",
         lambda name, first, last: _("%(field)s must lie in the years %(first)s-%(last)s", field=_field(name),
                                     first=first, last=last)),
    rule(r"(?P<name>\w+) is over (?P<limit>\d+) characters",
         lambda name, limit: _("%(field)s is over %(limit)s characters", field=_field(name), limit=limit)),
    rule(r"(?P<name>\w+) holds a NUL character",
         lambda name: _("%(field)s holds a NUL character", field=_field(name))),
)

RECORD_FILTER: tuple[Rule, ...] = (
    rule(r"plate_mode must be one of (?P<choices>.*)",
         lambda choices: _("plate_mode must be one of %(choices)s", choices=choices)),
    rule(r"(?P<name>\w+) must not hold a NUL character",
         lambda name: _("%(field)s must not hold a NUL character", field=_field(name))),
    rule(r"(?P<name>\w+) is not a date and time \(YYYY-MM-DDTHH:MM\) in the years "
         r"(?P<first>\d+)-(?P<last>\d+)",
         lambda name, first, last: _("%(field)s is not a date and time (YYYY-MM-DDTHH:MM) in the years "
                                     "%(first)s-%(last)s", field=_field(name), first=first, last=last)),
    rule(r"(?P<name>\w+) is not a number", lambda name: _("%(field)s is not a number", field=_field(name))),
    rule(r"(?P<name>\w+) must be between 0 and 100",
         lambda name: _("%(field)s must be between 0 and 100", field=_field(name))),
)

BLACKLIST: tuple[Rule, ...] = (
    rule(r"match must be one of (?P<choices>.*)",
         lambda choices: _("match must be one of %(choices)s", choices=choices)),
    rule(r"a pattern needs at least two characters that are not wildcards \(\* any run, \? one character\)",
         lambda: _("a pattern needs at least two characters that are not wildcards (* any run, ? one "
                   "character)")),
    rule(r"a pattern is at most (?P<limit>\d+) characters once normalised",
         lambda limit: _("a pattern is at most %(limit)s characters once normalised", limit=limit)),
    rule(r"\* and \? are wildcards only in a pattern: choose match pattern, or leave them out",
         lambda: _("* and ? are wildcards only in a pattern: choose match pattern, or leave them out")),
    rule(r"the plate is empty or over (?P<limit>\d+) characters once normalised",
         lambda limit: _("the plate is empty or over %(limit)s characters once normalised", limit=limit)),
    rule(r"the plate is empty or too long", lambda: _("the plate is empty or too long")),
    rule(r"category must be one of (?P<choices>.*)",
         lambda choices: _("category must be one of %(choices)s", choices=choices)),
    rule(r"the reason is over 2000 characters", lambda: _("the reason is over 2000 characters")),
    rule(r"the reason holds a NUL character", lambda: _("the reason holds a NUL character")),
    rule(r"already on the blacklist", lambda: _("already on the blacklist")),
    rule(r"the expiry is not a date and time \(YYYY-MM-DDTHH:MM, years 1970-2100\)",
         lambda: _("the expiry is not a date and time (YYYY-MM-DDTHH:MM, years 1970-2100)")),
    rule(r"expires_at is not a date \(YYYY-MM-DD or YYYY-MM-DDTHH:MM\)",
         lambda: _("expires_at is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)")),
    rule(r"no plate column \(license_plate_text or plate\) in the header",
         lambda: _("no plate column (license_plate_text or plate) in the header")),
)

KNOWN: tuple[Rule, ...] = (
    rule(r"group is empty: name the group \(residents, staff …\)",
         lambda: _("group is empty: name the group (residents, staff …)")),
    rule(r"group may not hold / or control characters",
         lambda: _("group may not hold / or control characters")),
    rule(r"max_stay_minutes is a whole number from 1 to (?P<limit>\d+), or (?:null|empty) for no limit",
         lambda limit: _("max_stay_minutes is a whole number from 1 to %(limit)s, or empty for no limit",
                         limit=limit)),
    rule(r"plate is empty or over (?P<limit>\d+) characters once normalised",
         lambda limit: _("plate is empty or over %(limit)s characters once normalised", limit=limit)),
    rule(r"plate is empty or over (?P<limit>\d+) characters",
         lambda limit: _("plate is empty or over %(limit)s characters", limit=limit)),
    rule(r"a known plate is one plate: \* and \? are not allowed",
         lambda: _("a known plate is one plate: * and ? are not allowed")),
    rule(r"(?P<name>\w+) is not a date or a date and time \(YYYY-MM-DD or YYYY-MM-DDTHH:MM, years "
         r"(?P<first>\d+)-(?P<last>\d+)\)",
         lambda name, first, last: _("%(field)s is not a date or a date and time (YYYY-MM-DD or "
                                     "YYYY-MM-DDTHH:MM, years %(first)s-%(last)s)", field=_field(name),
                                     first=first, last=last)),
    rule(r"valid_until must be after valid_from",
         lambda: _("%(until)s must be after %(since)s", until=_field("valid_until"),
                   since=_field("valid_from"))),
    rule(r"(?P<plate>.+) is a known plate of group (?P<group>.+) already",
         lambda plate, group: _("%(plate)s is a known plate of group %(group)s already", plate=plate,
                                group=group)),
    rule(r"the file is not CSV: (?P<why>.*)", lambda why: _("the file is not CSV: %(why)s", why=why)),
    rule(r"the header has no (?P<missing>.+) column \(columns: (?P<columns>.*)\)",
         lambda missing, columns: _("the header has no %(missing)s column (columns: %(columns)s)",
                                    missing=missing, columns=columns)),
    rule(r"(?P<rows>[\d,]+) rows: at most (?P<limit>[\d,]+) in one file; nothing was imported, split "
         r"the file",
         lambda rows, limit: _("%(rows)s rows: at most %(limit)s in one file; nothing was imported, split "
                               "the file", rows=rows, limit=limit)),
)

CORRECTION: tuple[Rule, ...] = (
    rule(r"type the plate as it is on the vehicle", lambda: _("type the plate as it is on the vehicle")),
    rule(r"the plate is longer than 64 characters", lambda: _("the plate is longer than 64 characters")),
    rule(r"the province is a name or an ISO 3166-2:TH code \(TH-10\)",
         lambda: _("the province is a name or an ISO 3166-2:TH code (TH-10)")),
    rule(r"(?P<province>'.*') is not a Thai province",
         lambda province: _("%(province)s is not a Thai province", province=province)),
    rule(r"the plate is empty or over (?P<limit>\d+) characters once normalised",
         lambda limit: _("the plate is empty or over %(limit)s characters once normalised", limit=limit)),
)

USER: tuple[Rule, ...] = (
    rule(r"Passwords need at least (?P<count>\d+) characters",
         lambda count: _("Passwords need at least %(count)s characters", count=count)),
    rule(r"Username: (?P<rule>.*)", lambda rule: _("Username: %(rule)s", rule=rule)),
    rule(r"Role: one of (?P<roles>.*)", lambda roles: _("Role: one of %(roles)s", roles=roles)),
)


def translated(message: str, rules: tuple[Rule, ...], field: str | None = None) -> str:
    """The message in the page's language; one no rule knows, told by its field."""
    for pattern, say in (*rules, *COMMON):
        found = pattern.fullmatch(message)
        if found:
            return say(**found.groupdict())
    return _("%(field)s: not accepted", field=_field(field)) if field else _("Not accepted")
