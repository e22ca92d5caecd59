"""Words for the values the pages show of the blacklist (SPEC §13): its match modes and categories.
Lazy, so they are said in each request's language."""

from flask_babel import lazy_gettext as _l

# A detection's match_type is one of the modes too.
# "normalized": the same plate written differently (spaces, dashes, Thai digits; plates.match_type).
MATCH_LABELS = {"exact": _l("exact"), "normalized": _l("same plate, written differently"),
                "lookalike": _l("look-alike"), "fuzzy": _l("one edit"), "pattern": _l("pattern")}
# The same words as the alert messages (channels/render.py).
CATEGORY_LABELS = {"stolen": _l("stolen"), "wanted": _l("wanted"), "vip": _l("VIP"),
                   "watch": _l("watch list"), "other": _l("other")}
