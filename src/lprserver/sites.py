"""Sites (SPEC §15 "Sites"): which cameras, and so which reads, a user may see.

A camera belongs to at most one site (`cameras.site`). A user may be limited to sites
(`users.sites`); such a user sees only the cameras of those sites and everything that came from
them (reads, images, hits, alerts, visits, statistics, live events). Cameras with no site are seen
only by users without a limit. A record or camera outside the user's sites answers 404, as if it
did not exist.

Every query that returns camera-derived data takes a `Scope` and adds `scope.cameras_clause(col)`;
`EVERYWHERE` is the scope of unlimited users, the daemon and the CLI.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, select, true

from .models import Camera, User

SITE_MAX_CHARS = 64


def clean_site(value: object) -> str | None:
    """Return a site name as kept (stripped), None for "no site"; ValueError for a bad one."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("site must be a string of 1-64 characters, or null for no site")
    name = value.strip()
    if not name:
        return None
    if len(name) > SITE_MAX_CHARS:
        raise ValueError(f"site must be at most {SITE_MAX_CHARS} characters")
    if any(ch in name for ch in ",\r\n\t") or not name.isprintable():
        raise ValueError("site must not contain commas, tabs, line breaks or control characters")
    return name


def parse_sites(value: str | Iterable[str] | None) -> list[str]:
    """Read a user's site list, "A, B" or ["A", "B"], into sorted unique names; [] means every site."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    names = set()
    for part in parts:
        if isinstance(part, str) and not part.strip():
            continue
        name = clean_site(part)
        if name is not None:
            names.add(name)
    return sorted(names)


@dataclass(frozen=True)
class Scope:
    """The sites a caller may see; `sites` None means every camera, with a site or without."""

    sites: frozenset[str] | None = None

    @property
    def limited(self) -> bool:
        return self.sites is not None

    def camera_ids(self) -> Select:
        """SELECT the ids of the cameras this scope sees (only meaningful when limited)."""
        return select(Camera.id).where(Camera.site.in_(sorted(self.sites or ())))

    def cameras_clause(self, camera_column) -> ColumnElement[bool]:
        """A WHERE clause keeping rows whose camera (`camera_column`, a camera id) this scope sees."""
        if self.sites is None:
            return true()
        return camera_column.in_(self.camera_ids())

    def sites_clause(self, site_column) -> ColumnElement[bool]:
        """A WHERE clause on `Camera.site` itself (for queries over cameras)."""
        if self.sites is None:
            return true()
        return site_column.in_(sorted(self.sites))

    def sees_site(self, site: str | None) -> bool:
        """Whether a camera of `site` (None: no site) is visible."""
        return self.sites is None or (site is not None and site in self.sites)

    def sees_camera(self, camera: Camera | None) -> bool:
        return camera is not None and self.sees_site(camera.site)

    def as_list(self) -> list[str] | None:
        return None if self.sites is None else sorted(self.sites)

    def audit_detail(self) -> dict:
        """What an audit entry says of the scope a request ran in: a limited user's sites, else nothing."""
        return {} if self.sites is None else {"sites": sorted(self.sites)}


EVERYWHERE = Scope(None)


def scope_of(user: User | None) -> Scope:
    """The scope of a user: their sites, or everywhere when they have no limit."""
    sites = getattr(user, "sites", None)
    if not sites:
        return EVERYWHERE
    return Scope(frozenset(sites))


def current_scope() -> Scope:
    """The scope of the signed-in user or the API token's user of this request (Flask only)."""
    from flask_login import current_user

    if not getattr(current_user, "is_authenticated", False):
        return Scope(frozenset())  # nobody signed in sees nothing; routes refuse them before this
    return scope_of(current_user._get_current_object())
