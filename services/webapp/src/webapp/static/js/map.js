// Maps on Leaflet (served by this app), drawn without tiles: the service area's circles, routes
// and markers on a plain projected background, with a scale; a tile layer only when configured.

const COLOURS = {
  area: "#4d7ab0",
  base: "#4a5563",
  pickup: "#1d6b2f",
  dropoff: "#a4161a",
  drone: "#0b5cad",
  route: "#0b5cad",
  ToPickup: "#0b5cad",
  AtPickup: "#6a3d9a",
  ToDropoff: "#b35900",
  AtDropoff: "#a4161a",
  Returning: "#4a5563",
};
export { COLOURS };

export function leaflet() {
  return globalThis.L;
}

export function createMap(element, config) {
  const L = leaflet();
  if (!L || !element) {
    if (element) {
      element.textContent = "";
      const note = document.createElement("p");
      note.className = "map-fallback";
      note.textContent = "The map is not available (its script is missing: run make assets). Everything it would show is listed on this page.";
      element.append(note);
    }
    return null;
  }
  const bases = config.area?.bases ?? [];
  const radius = config.area?.radiusMeters ?? 0;
  // The area's extent from the circles' own geometry (a circle measures itself only once the
  // map has a view): the map starts there.
  let bounds = null;
  for (const base of bases) {
    const extent = L.latLng(base.at).toBounds(2 * radius);
    bounds = bounds ? bounds.extend(extent) : extent;
  }
  const map = L.map(element, {
    zoomSnap: 0.25,
    attributionControl: Boolean(config.tiles),
    keyboard: true,
    worldCopyJump: false,
  });
  if (bounds) map.fitBounds(bounds, { padding: [10, 10] });
  else map.setView([0, 0], 2);
  if (config.tiles) {
    L.tileLayer(config.tiles.url, { attribution: config.tiles.attribution || "", maxZoom: 19 }).addTo(map);
  }
  L.control.scale({ imperial: true, metric: true }).addTo(map);
  const area = L.featureGroup().addTo(map);
  for (const base of bases) {
    L.circle(base.at, {
      radius, color: COLOURS.area, weight: 1, fillColor: "#cfe0f2", fillOpacity: 0.35, interactive: false,
    }).addTo(area);
    L.circleMarker(base.at, { radius: 5, color: "#222", weight: 1, fillColor: COLOURS.base, fillOpacity: 1 })
      .bindTooltip(`base ${base.name}`)
      .addTo(area);
  }
  return map;
}

export function place(map, at, colour, label, radius = 8) {
  const L = leaflet();
  const marker = L.circleMarker(at, { radius, color: "#111", weight: 2, fillColor: colour, fillOpacity: 1 });
  if (label) marker.bindTooltip(label);
  return marker.addTo(map);
}
