"""Words for the values the pages show of the blacklist (SPEC §13): its match modes and categories.
Lazy, so they are said in each request's language."""

from flask_babel import lazy_gettext as _l

# A detection's match_type is one of the modes too.
MATCH_LABELS = {"exact": _l("exact"), "lookalike": _l("look-alike"), "fuzzy": _l("one edit"),
                "pattern": _l("pattern")}
# The same words as the alerts page (web/alerts.py category_labels).
CATEGORY_LABELS = {"stolen": _l("stolen"), "wanted": _l("wanted"), "vip": _l("VIP"),
                   "watch": _l("watch list"), "other": _l("other")}
