// The schedule form's map: a click (or a typed "latitude,longitude") places the pickup or the
// drop-off; the radio buttons choose which. The fields stay the source of truth.
import { pageData } from "./common.js";
import { COLOURS, createMap, leaflet, place } from "./map.js";

const data = pageData();
const map = createMap(document.getElementById("map"), data);
const status = document.getElementById("map-status");
const fields = { pickup: document.getElementById("pickup"), dropoff: document.getElementById("dropoff") };
const markers = {};
const LAT_LON = /^\s*([-+]?\d+(?:\.\d+)?)\s*,\s*([-+]?\d+(?:\.\d+)?)\s*$/;

function target() {
  return document.querySelector('input[name="pick"]:checked')?.value || "pickup";
}

function show(name) {
  if (!map) return;
  const match = LAT_LON.exec(fields[name].value);
  markers[name]?.remove();
  delete markers[name];
  if (!match) return;
  const at = [Number(match[1]), Number(match[2])];
  markers[name] = place(map, at, name === "pickup" ? COLOURS.pickup : COLOURS.dropoff, name === "pickup" ? "pickup" : "drop-off", 9);
}

if (map) {
  map.on("click", (event) => {
    const name = target();
    const value = `${event.latlng.lat.toFixed(6)},${event.latlng.lng.toFixed(6)}`;
    fields[name].value = value;
    show(name);
    if (status) status.textContent = `${name === "pickup" ? "Pickup" : "Drop-off"} set to ${value}.`;
    if (name === "pickup") document.getElementById("pick-dropoff").checked = true;
  });
  leaflet().DomUtil.addClass(map.getContainer(), "pickable");
}
for (const name of Object.keys(fields)) {
  fields[name]?.addEventListener("change", () => show(name));
  show(name);
}
// After a refused submit, the first field in error takes the focus.
document.querySelector('[aria-invalid="true"]')?.focus();
