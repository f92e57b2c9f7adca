// The operators' page: the fleet on the map coloured by phase, counts, active deliveries, the
// queue and throughput, refreshed every few seconds.
import {
  countdown, formatWhen, getJSON, label, localiseTimes, pageData, setServerNow, text, tickCountdowns,
} from "./common.js";
import { COLOURS, createMap, leaflet } from "./map.js";

const REFRESH_MS = 5000;
const data = pageData();
const mapElement = document.getElementById("map");
const map = createMap(mapElement, data);
const L = leaflet();
const layer = map ? L.layerGroup().addTo(map) : null;

function drawFleet(fleet) {
  if (mapElement) mapElement.dataset.drones = String(fleet.drones.length);
  if (!layer) return;
  layer.clearLayers();
  for (const drone of fleet.drones) {
    L.circleMarker(drone.at, {
      radius: 6, color: "#111", weight: 1, fillColor: COLOURS[drone.phase] || COLOURS.drone, fillOpacity: 1,
    }).bindTooltip(`${drone.droneId} · ${label(drone.phase)}`).addTo(layer);
  }
}

function setText(id, value) {
  const element = document.getElementById(id);
  if (element) element.textContent = value;
}

function fill(tableId, rows, columns, empty) {
  const body = document.getElementById(tableId)?.tBodies[0];
  if (!body) return;
  if (!rows.length) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const cell = text("td", empty);
    cell.colSpan = columns;
    tr.append(cell);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(...rows);
}

function activeRow(drone) {
  const tr = document.createElement("tr");
  const first = document.createElement("td");
  if (drone.deliveryId) {
    const link = document.createElement("a");
    link.href = `/deliveries/${encodeURIComponent(drone.deliveryId)}`;
    link.textContent = `${drone.deliveryId.slice(0, 8)}…`;
    first.append(link);
  } else first.textContent = "—";
  const phase = text("td", label(drone.phase));
  if (drone.phaseEndsAt) {
    const ends = text("span", "ends ", "phase-ends muted");
    ends.append(...countdown(drone.phaseEndsAt, { timeShown: false }));
    phase.append(ends);
  }
  tr.append(first, text("td", drone.droneId), phase,
    text("td", `${Math.round(drone.speedMph || 0)} mph`), text("td", `${Math.round(drone.batteryPct || 0)} %`));
  return tr;
}

function letterRow(letter) {
  const tr = document.createElement("tr");
  const when = document.createElement("td");
  const time = document.createElement("time");
  time.setAttribute("datetime", letter.deadLetteredAt || "");
  time.textContent = formatWhen(letter.deadLetteredAt);
  when.append(time);
  tr.append(when, text("td", letter.operation || "—"), text("td", letter.deliveryId || "—"),
    text("td", `${letter.reason}: ${letter.description}`));
  return tr;
}

function show(state) {
  setServerNow(state.now);
  drawFleet(state.fleet);
  setText("kpi-inflight", String(state.fleet.inFlight));
  for (const element of document.querySelectorAll("[data-phase]")) {
    element.textContent = String(state.fleet.byPhase[element.dataset.phase] ?? 0);
  }
  const queue = state.queue || {};
  setText("kpi-depth", queue.depth ?? "—");
  setText("kpi-pending", queue.pending ?? "—");
  setText("kpi-deadletters", queue.deadLetters ?? "—");
  const rate = queue.throughput?.perMinute;
  setText("kpi-throughput", rate === null || rate === undefined ? "measuring…" : rate.toFixed(1));
  fill("active", state.fleet.drones.map(activeRow), 5, "No drone in the air.");
  fill("deadletters", (queue.deadLetterList || []).map(letterRow), 4, "None.");
  const stamp = document.getElementById("ops-now");
  if (stamp) {
    stamp.setAttribute("datetime", state.now);
    stamp.textContent = formatWhen(state.now);
  }
}

localiseTimes();
show(data);
setInterval(() => tickCountdowns(), 1000);
setInterval(async () => {
  try {
    show(await getJSON("/ops.json"));
  } catch {
    // keep the last picture; the next refresh tries again
  }
}, REFRESH_MS);
