"""The map (SPEC §12 "Map"): the cameras at their coordinates, coloured by state, and a plate's route.
The page draws itself from `GET /api/cameras` and `GET /api/plates/<plate>` (static/js/map.js)."""

from flask import abort, current_app, render_template, request
from flask_login import login_required

from ..plate_history import plate_from_path
from . import bp


@bp.get("/map")
@login_required
def map_page():
    """The cameras on a map; with `?plate=`, that plate's route over them."""
    plate = None
    if request.args.get("plate"):
        plate = plate_from_path(request.args["plate"])
        if plate is None:
            abort(404)
    config = current_app.config
    return render_template("map.html", plate=plate, tile_url=config["MAP_TILE_URL"],
                           tile_attribution=config["MAP_TILE_ATTRIBUTION"])
