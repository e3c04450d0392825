// The Today board's map: where each action of the supervisor's teams was recorded today.
// Leaflet (static/vendor/leaflet, from the npm registry) draws the points and the sites'
// geofences as SVG. Tiles come from the MAP_TILE_URL setting; with none, or when they fail to
// load (no internet, a blocked server), the same points stay on a plain background.
// The page's translated texts arrive as data-text-* attributes; no inline script or style.
import {
  Circle,
  CircleMarker,
  LatLngBounds,
  LayerGroup,
  Map as LeafletMap,
  TileLayer,
} from "../vendor/leaflet/leaflet-src.esm.js";

const COLOURS = { deliveries: "#0b5cad", patrols: "#b3261e", visits: "#1b7f3b" };
const REFRESH_MS = 60_000;

function popup(action, texts) {
  const box = document.createElement("div");
  box.className = "dashboard-map-popup";
  const head = document.createElement("strong");
  head.textContent = `${action.time} · ${action.worker}`;
  const kind = document.createElement("span");
  kind.textContent = action.label;
  const link = document.createElement("a");
  link.href = action.url;
  link.textContent = texts.open;
  box.append(head, kind, document.createElement("br"), link);
  return box;
}

function start(element) {
  const texts = {
    open: element.dataset.textOpen,
    geofence: element.dataset.textGeofence || "{name}",
    noTiles: element.dataset.textNoTiles,
    tilesFailed: element.dataset.textTilesFailed,
    empty: element.dataset.textEmpty,
    failed: element.dataset.textFailed,
  };
  const note = element.parentElement.querySelector("[data-map-note]");
  const notes = new Set();
  const say = () => {
    if (note) note.textContent = [...notes].join(" ");
  };

  const map = new LeafletMap(element, { zoomSnap: 0.5 });
  map.attributionControl.setPrefix(false);
  const url = element.dataset.tiles;
  if (url) {
    const tiles = new TileLayer(url, {
      maxZoom: 19,
      attribution: element.dataset.attribution || "",
    });
    let failed = false;
    tiles.on("tileerror", () => {
      if (failed) return;
      failed = true;
      map.removeLayer(tiles);
      element.classList.add("no-tiles");
      element.dataset.tilesState = "failed";
      notes.add(texts.tilesFailed);
      say();
    });
    tiles.addTo(map);
  } else {
    element.classList.add("no-tiles");
    notes.add(texts.noTiles);
    say();
  }

  const geofences = new LayerGroup().addTo(map);
  const actions = new LayerGroup().addTo(map);
  let fitted = false;

  async function load() {
    let data;
    try {
      const response = await fetch(element.dataset.src, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      data = await response.json();
    } catch (error) {
      notes.add(texts.failed);
      say();
      element.dataset.state = "failed";
      return;
    }
    notes.delete(texts.failed);
    geofences.clearLayers();
    actions.clearLayers();
    const bounds = new LatLngBounds([]);
    for (const site of data.sites) {
      const circle = new Circle([site.lat, site.lng], {
        radius: site.radius_m,
        color: "#5f6368",
        weight: 1,
        dashArray: "4 4",
        fillOpacity: 0.08,
        className: "dashboard-map-site",
      });
      circle.bindTooltip(texts.geofence.replace("{name}", site.name));
      circle.addTo(geofences);
      bounds.extend(circle.getLatLng());
    }
    for (const action of data.actions) {
      const marker = new CircleMarker([action.lat, action.lng], {
        radius: 7,
        color: "#ffffff",
        weight: 2,
        fillColor: COLOURS[action.domain] || "#5f6368",
        fillOpacity: 0.9,
        className: `dashboard-map-action dashboard-map-${action.kind}`,
      });
      marker.bindPopup(popup(action, texts));
      marker.bindTooltip(`${action.time} · ${action.worker} · ${action.label}`);
      marker.addTo(actions);
      bounds.extend(marker.getLatLng());
    }
    if (data.actions.length) notes.delete(texts.empty);
    else notes.add(texts.empty);
    say();
    if (!fitted) {
      if (bounds.isValid()) {
        map.fitBounds(bounds.pad(0.15), { maxZoom: 16 });
        fitted = true;
      } else {
        map.setView([0, 0], 2);
      }
    }
    element.dataset.markers = String(data.actions.length);
    element.dataset.sites = String(data.sites.length);
    element.dataset.state = "ready";
  }

  load();
  setInterval(() => {
    if (!document.hidden) load();
  }, REFRESH_MS);
}

const element = document.getElementById("dashboard-map");
if (element) start(element);
