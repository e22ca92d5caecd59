// The map (SPEC §12 "Map"): every camera with coordinates as a dot coloured by its state, kept current by
// the live `camera_status` and `new_record` events; with ?plate=, that plate's route as numbered stops.
// Without MAP_TILE_URL there is no tile layer, so the page asks nothing of any other site.
// Camera names and places are put into the page as text, never as HTML.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("map-config").textContent);
  const liveConfig = JSON.parse(document.getElementById("live-config").textContent);
  // The page's words, translated on the server (SPEC §13: the template's page_text). They are also
  // LPR.text's fallback: live.js may have read #page-text before it was in the page.
  const pageWords = JSON.parse(document.getElementById("page-text").textContent || "{}");
  const say = (key, values) => window.LPR.text(key, pageWords[key], values);
  const labels = {};
  ["online", "offline", "silent", "no_cameras", "no_route", "no_place", "failed", "none"].forEach((key) => {
    labels[key] = say(key);
  });
  const localTime = window.LprPage.timeFormatter(liveConfig.timezone);
  const COLOURS = { online: "#198754", offline: "#6c757d", silent: "#dc3545" };
  const LABEL_LIMIT = 40; // past this many cameras the names show on hover only

  const map = L.map("map", { attributionControl: Boolean(config.tile_url), zoomSnap: 0.5, maxZoom: 19 });
  if (config.tile_url) {
    const layer = L.tileLayer(config.tile_url, { maxZoom: 19 });
    map.addLayer(layer);
    // The attribution is the admin's text, shown as text (Leaflet would take it as HTML).
    if (config.tile_attribution) map.attributionControl.addAttribution(escapeText(config.tile_attribution));
  }
  L.control.scale({ imperial: false }).addTo(map);
  map.setView([13.7563, 100.5018], 6); // Thailand, until the cameras say where to look

  const cameras = new Map(); // id -> {data, marker}
  const cameraLayer = L.layerGroup().addTo(map);
  const routeLayer = L.layerGroup().addTo(map);
  let routeBounds = null;

  function escapeText(text) {
    const div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  function stateOf(camera) {
    if (camera.offline_alert_id != null) return "silent";
    return camera.online ? "online" : "offline";
  }

  function placed(item) {
    return item.latitude != null && item.longitude != null;
  }

  function popupFor(camera) {
    const node = document.getElementById("map-popup-template").content.firstElementChild.cloneNode(true);
    const field = (name) => node.querySelector(`[data-field="${name}"]`);
    const state = stateOf(camera);
    field("name").textContent = camera.name || camera.id;
    field("id").textContent = camera.name ? camera.id : "";
    field("location").textContent = camera.location || "";
    field("state").textContent = labels[state];
    field("state").className = `badge ${{ online: "text-bg-success", offline: "text-bg-secondary",
                                          silent: "text-bg-danger" }[state]}`;
    field("reads").textContent = String(camera.reads_today || 0);
    field("last-seen").textContent = localTime(camera.last_seen);
    field("records").href = `${config.records_url}?camera_id=${encodeURIComponent(camera.id)}`;
    return node;
  }

  function restyle(entry) {
    const state = stateOf(entry.data);
    entry.marker.setStyle({ fillColor: COLOURS[state], className: `camera-marker camera-${state}` });
    const path = entry.marker.getElement && entry.marker.getElement();
    if (path) path.setAttribute("class", `leaflet-interactive camera-marker camera-${state}`);
    if (path) path.dataset.cameraId = entry.data.id;
    if (entry.marker.isPopupOpen()) entry.marker.setPopupContent(popupFor(entry.data));
  }

  function addCamera(camera, withLabel) {
    const state = stateOf(camera);
    const marker = L.circleMarker([camera.latitude, camera.longitude], {
      radius: 9, weight: 2, color: "#fff", fillColor: COLOURS[state], fillOpacity: 1,
      className: `camera-marker camera-${state}`,
    });
    const entry = { data: camera, marker };
    marker.bindPopup(() => popupFor(entry.data));
    const label = document.createElement("span");
    label.textContent = camera.name || camera.id;
    marker.bindTooltip(label, { permanent: withLabel, direction: "right", offset: [8, 0], className: "map-label" });
    marker.addTo(cameraLayer);
    marker.getElement().dataset.cameraId = camera.id;
    cameras.set(camera.id, entry);
  }

  function listUnplaced(unplaced) {
    const list = document.getElementById("map-unplaced-list");
    document.getElementById("map-unplaced-count").textContent = String(unplaced.length);
    list.replaceChildren(...unplaced.map((camera) => {
      const item = document.createElement("li");
      item.className = "list-group-item d-flex justify-content-between gap-2 unplaced-camera";
      item.dataset.cameraId = camera.id;
      const name = document.createElement("span");
      name.textContent = camera.name || camera.id;
      const state = document.createElement("span");
      state.className = `map-dot map-${stateOf(camera)}`;
      state.title = labels[stateOf(camera)];
      item.append(name, state);
      return item;
    }));
  }

  function fit() {
    const points = [...cameras.values()].map((entry) => entry.marker.getLatLng());
    const bounds = routeBounds || (points.length ? L.latLngBounds(points) : null);
    // Room on the right for the names beside the dots, and above for a route's numbers.
    const right = cameras.size <= LABEL_LIMIT ? 150 : 40;
    if (bounds) map.fitBounds(bounds, { paddingTopLeft: [40, 56], paddingBottomRight: [right, 32], maxZoom: 17 });
  }

  async function loadCameras(refit) {
    const answer = await window.LprPage.api("GET", config.cameras_url);
    if (!answer.ok) {
      document.getElementById("map-note").textContent = labels.failed;
      return;
    }
    cameraLayer.clearLayers();
    cameras.clear();
    const all = answer.data.cameras;
    const onMap = all.filter(placed);
    onMap.forEach((camera) => addCamera(camera, onMap.length <= LABEL_LIMIT));
    listUnplaced(all.filter((camera) => !placed(camera)));
    if (!onMap.length && !config.plate) document.getElementById("map-note").textContent = labels.no_cameras;
    if (refit) fit();
    document.getElementById("map").dataset.cameras = String(onMap.length);
  }

  // --- a plate's route: stops in time order, one numbered marker per place -------------------------------
  function stopLine(stop, number) {
    const item = document.createElement("li");
    item.className = "route-stop";
    item.dataset.cameraId = stop.camera_id;
    const badge = document.createElement("span");
    badge.className = "route-number";
    badge.textContent = String(number);
    const name = document.createElement("span");
    name.className = "fw-semibold";
    name.textContent = stop.camera_name || stop.camera_id;
    const when = document.createElement("a");
    when.href = `${config.record_url}${stop.first_record_id}`;
    when.textContent = localTime(stop.first_seen);
    item.append(badge, name, when);
    if (stop.reads > 1) {
      const reads = document.createElement("span");
      reads.className = "badge text-bg-light border";
      reads.textContent = `×${stop.reads}`;
      item.append(reads);
    }
    if (!placed(stop)) {
      const none = document.createElement("span");
      none.className = "text-secondary";
      none.textContent = labels.no_place;
      item.append(none);
    }
    return item;
  }

  function drawRoute(route) {
    const places = new Map(); // "lat,lon" -> {latlng, numbers, stops}
    const line = [];
    route.forEach((stop, i) => {
      if (!placed(stop)) return;
      const key = `${stop.latitude},${stop.longitude}`;
      const latlng = L.latLng(stop.latitude, stop.longitude);
      line.push(latlng);
      if (!places.has(key)) places.set(key, { latlng, numbers: [], stops: [] });
      places.get(key).numbers.push(i + 1);
      places.get(key).stops.push(stop);
    });
    if (line.length > 1) {
      L.polyline(line, { color: "#0d6efd", weight: 4, opacity: 0.7, className: "map-route-line" }).addTo(routeLayer);
    }
    const last = route.length;
    places.forEach((place) => {
      const text = document.createElement("span");
      const numbers = place.numbers;
      text.textContent = numbers.length <= 4 ? numbers.join(", ")
        : `${numbers.slice(0, 3).join(", ")} … ${numbers.at(-1)}`;
      const wrap = document.createElement("div");
      wrap.append(text);
      // The numbers sit just above the place, so the camera's dot (its state) stays in sight.
      const width = Math.max(24, 10 + text.textContent.length * 7);
      const icon = L.divIcon({
        html: wrap, className: `map-stop-icon${numbers.includes(last) ? " map-stop-last" : ""}`,
        iconSize: [width, 24], iconAnchor: [width / 2, 34],
      });
      const marker = L.marker(place.latlng, { icon, zIndexOffset: 1000, keyboard: true,
                                              title: place.stops[0].camera_name || place.stops[0].camera_id });
      const popup = document.createElement("ol");
      popup.className = "list-unstyled mb-0 small route-popup";
      place.stops.forEach((stop, j) => popup.append(stopLine(stop, numbers[j])));
      marker.bindPopup(popup);
      marker.addTo(routeLayer);
    });
    routeBounds = line.length ? L.latLngBounds(line) : null;
    document.getElementById("map").dataset.stops = String(line.length);
  }

  async function loadRoute() {
    const state = document.getElementById("map-route-state");
    const answer = await window.LprPage.api("GET", config.plate_url);
    if (!answer.ok) {
      state.textContent = answer.status === 404 ? labels.no_route : labels.failed;
      return;
    }
    const route = answer.data.route;
    document.getElementById("map-route-count").textContent = say("stops", { count: route.length });
    document.getElementById("map-route-stops").replaceChildren(...route.map((stop, i) => stopLine(stop, i + 1)));
    state.hidden = true;
    drawRoute(route);
  }

  // --- live: the cameras' state, reads today and last seen follow the events (live.js) ------------------
  window.LPR.on("camera_status", (data) => {
    const entry = cameras.get(data.camera_id);
    if (!entry) return;
    ["online", "offline_alert_id", "last_seen", "health"].forEach((key) => {
      if (data[key] !== undefined) entry.data[key] = data[key];
    });
    restyle(entry);
  });
  window.LPR.on("new_record", (record) => {
    const entry = cameras.get(record.camera_id);
    if (!entry) return;
    entry.data.reads_today = (entry.data.reads_today || 0) + 1;
    entry.data.last_seen = record.received_at;
    if (entry.marker.isPopupOpen()) entry.marker.setPopupContent(popupFor(entry.data));
  });

  async function start() {
    // After a lost connection, the state may have moved on: read it again (SPEC §3).
    let connects = 0;
    const socket = window.LPR.socket;
    if (socket) socket.on("connect", () => { connects += 1; if (connects > 1) loadCameras(false); });
    await Promise.all([loadCameras(false), config.plate ? loadRoute() : null]);
    fit();
    document.getElementById("map").dataset.ready = "1";
  }
  document.addEventListener("DOMContentLoaded", start);
})();
