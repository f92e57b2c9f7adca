// The place pickers' map (the schedule form and a delivery's change form): a click (or a typed
// "latitude,longitude") places the pickup or the drop-off; the radio buttons choose which. The
// fields stay the source of truth. A change form's page data also has the places as they are
// now ("current"), drawn hollow.
import { pageData } from "./common.js";
import { COLOURS, createMap, leaflet, place } from "./map.js";

const data = pageData();
const map = createMap(document.getElementById("map"), data);
const status = document.getElementById("map-status");
const NAMES = { pickup: "pickup", dropoff: "drop-off" };
// The fields the page has (a change form has no pickup once the drone has the package).
const fields = Object.fromEntries(
  Object.keys(NAMES).map((name) => [name, document.getElementById(name)]).filter(([, field]) => field),
);
const markers = {};
const LAT_LON = /^\s*([-+]?\d+(?:\.\d+)?)\s*,\s*([-+]?\d+(?:\.\d+)?)\s*$/;

function target() {
  const chosen = document.querySelector('input[name="pick"]:checked')?.value;
  return chosen in fields ? chosen : Object.keys(fields)[0];
}

function colour(name) {
  return name === "pickup" ? COLOURS.pickup : COLOURS.dropoff;
}

function show(name) {
  if (!map) return;
  const match = LAT_LON.exec(fields[name].value);
  markers[name]?.remove();
  delete markers[name];
  if (!match) return;
  const at = [Number(match[1]), Number(match[2])];
  markers[name] = place(map, at, colour(name), NAMES[name], 9);
}

if (map) {
  const now = Object.entries(data.current || {}).filter(([, at]) => at);
  for (const [name, at] of now) {
    leaflet().circleMarker(at, { radius: 9, color: colour(name), weight: 3, fillOpacity: 0 })
      .bindTooltip(`${NAMES[name]} now`)
      .addTo(map);
  }
  // A change starts from the places as they are: the map shows them, not the whole area.
  if (now.length) {
    map.fitBounds(leaflet().latLngBounds(now.map(([, at]) => at)), { padding: [60, 60], maxZoom: 14, animate: false });
  }
  map.on("click", (event) => {
    const name = target();
    if (!name) return;
    const value = `${event.latlng.lat.toFixed(6)},${event.latlng.lng.toFixed(6)}`;
    fields[name].value = value;
    show(name);
    if (status) status.textContent = `${name === "pickup" ? "Pickup" : "Drop-off"} set to ${value}.`;
    if (name === "pickup" && fields.dropoff) {
      const next = document.getElementById("pick-dropoff");
      if (next) next.checked = true;
    }
  });
  leaflet().DomUtil.addClass(map.getContainer(), "pickable");
}
for (const name of Object.keys(fields)) {
  fields[name].addEventListener("change", () => show(name));
  show(name);
}
// After a refused submit, the first field in error takes the focus.
document.querySelector('[aria-invalid="true"]')?.focus();
