"""A plate's page (SPEC §10): its history, sightings and route (plate_history.py)."""

import math

from flask import abort, render_template, request
from flask_login import login_required

from ..extensions import db
from ..models import utcnow
from ..plate_history import PER_PAGE, plate_from_path, plate_history
from ..sites import current_scope
from ..url_ids import row_id
from . import bp
from .labels import CATEGORY_LABELS, MATCH_LABELS

SKETCH_WIDTH, SKETCH_HEIGHT, SKETCH_MARGIN = 420, 260, 34


@bp.get("/plates/<plate:plate>")
@login_required
def plate(plate: str):
    normalized = plate_from_path(plate)
    if normalized is None:
        abort(404)
    before_id = request.args.get("before_id", type=row_id)
    history = plate_history(db.session, normalized, utcnow(), before_id=before_id, per_page=PER_PAGE,
                            scope=current_scope())
    if history is None:
        return render_template("plate.html", plate=normalized, history=None), 404
    return render_template("plate.html", plate=normalized, history=history, before_id=before_id,
                           sketch=route_sketch(history.route), match_labels=MATCH_LABELS,
                           category_labels=CATEGORY_LABELS)


def route_sketch(stops) -> dict | None:
    """Where each placed stop goes on a small SVG (no map): longitude east, latitude north, scaled alike
    both ways (a degree of longitude shortened by the cosine of the latitude). None with no placed stop."""
    placed = [(i, s) for i, s in enumerate(stops, 1) if s.latitude is not None and s.longitude is not None]
    if not placed:
        return None
    lats = [s.latitude for _, s in placed]
    lons = [s.longitude for _, s in placed]
    squeeze = math.cos(math.radians(sum(lats) / len(lats)))
    span_x = (max(lons) - min(lons)) * squeeze
    span_y = max(lats) - min(lats)
    inner_w, inner_h = SKETCH_WIDTH - 2 * SKETCH_MARGIN, SKETCH_HEIGHT - 2 * SKETCH_MARGIN
    scale = min(inner_w / span_x if span_x else math.inf, inner_h / span_y if span_y else math.inf)
    if scale == math.inf:
        scale = 0.0
    off_x = SKETCH_MARGIN + (inner_w - span_x * scale) / 2
    off_y = SKETCH_MARGIN + (inner_h - span_y * scale) / 2
    points, places = [], {}
    for number, stop in placed:
        x = round(off_x + (stop.longitude - min(lons)) * squeeze * scale, 1)
        y = round(off_y + (max(lats) - stop.latitude) * scale, 1)
        points.append({"x": x, "y": y, "number": number, "stop": stop})
        places.setdefault((x, y), []).append(number)
    # One dot per place, labelled with the camera and the numbers of the stops made there.
    # Labels read inwards near the sides, so a long camera name stays inside the sketch.
    dots = [{"x": x, "y": y, "numbers": numbers,
             "anchor": "start" if x < SKETCH_WIDTH * 0.3 else "end" if x > SKETCH_WIDTH * 0.7 else "middle",
             "name": next(p["stop"].camera_name or p["stop"].camera_id for p in points
                          if (p["x"], p["y"]) == (x, y))}
            for (x, y), numbers in places.items()]
    return {"width": SKETCH_WIDTH, "height": SKETCH_HEIGHT,
            "line": " ".join(f"{p['x']},{p['y']}" for p in points), "dots": dots,
            "first": points[0], "last": points[-1], "unplaced": len(stops) - len(placed)}
