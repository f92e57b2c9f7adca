// The track pages (the owner's and the public one): follow the delivery's tracking stream
// (Server-Sent Events through this app; EventSource reconnects with Last-Event-ID by itself),
// poll the status only while no stream can be had, count the ETAs down every second, move the
// drone on the map and keep the stage timeline current.
import {
  formatUntil, formatWhen, getJSON, label, localiseTimes, now, pageData, setServerNow, text, tickCountdowns,
} from "./common.js";
import { COLOURS, createMap, leaflet, place } from "./map.js";

const TERMINAL = new Set(["Completed", "Cancelled"]);
const POLL_MS = 3000;
const STREAM_RETRY_MS = 60000;

const data = pageData();
const staleSeconds = data.staleSeconds || 30;
setServerNow(data.now);
const mapElement = document.getElementById("map");
const banner = document.getElementById("tracking-banner");
const stageBadge = document.getElementById("stage");
const phaseText = document.getElementById("phase");
const telemetryText = document.getElementById("telemetry");
const positionText = document.getElementById("drone-position");
const announcer = document.getElementById("eta-announcer");
const timeline = document.getElementById("timeline");
const refusalAlert = document.getElementById("change-refused"); // the owner's page only

let current = data.status || {};
let streamLost = false;
let source = null;
let polling = null;
let stageEntry = null; // the newest stage entry the stream has shown
let lastAnnouncedEta = Date.parse(current.deliveryETA || "");
let refusalAsked = refusalAlert?.dataset.at || ""; // the refused change whose words were asked for

// --- the map -------------------------------------------------------------------------------

const map = createMap(mapElement, data);
let droneMarker = null;
let trail = null;
let routeLayer = null;
let drawnRoute = "";

// The route base → pickup → drop-off, drawn again (and the map fitted to it) when it changes.
function drawRoute(route) {
  const drawn = JSON.stringify(route || {});
  if (drawn === drawnRoute) return;
  drawnRoute = drawn;
  if (mapElement) mapElement.dataset.route = drawn;
  if (!map) return;
  const L = leaflet();
  routeLayer?.remove();
  routeLayer = L.layerGroup().addTo(map);
  const points = [route?.base?.at, route?.pickup, route?.dropoff].filter(Boolean);
  if (points.length > 1) {
    L.polyline(points, { color: COLOURS.route, weight: 3, dashArray: "6 6", opacity: 0.8 }).addTo(routeLayer);
  }
  if (route?.pickup) place(routeLayer, route.pickup, COLOURS.pickup, "pickup", 9);
  if (route?.dropoff) place(routeLayer, route.dropoff, COLOURS.dropoff, "drop-off", 9);
  // Straight to the route, not animated: animated, every load zoomed in from the whole area.
  if (points.length) map.fitBounds(L.latLngBounds(points), { padding: [40, 40], maxZoom: 15, animate: false });
  // A route drawn again stays under the drone and its trail.
  trail?.bringToFront();
  droneMarker?.bringToFront();
}

drawRoute(data.route);
if (map) trail = leaflet().polyline([], { color: COLOURS.drone, weight: 2, opacity: 0.6 }).addTo(map);

function showDrone(drone) {
  const location = drone?.location;
  if (!location) return;
  const at = [location.latitude, location.longitude];
  const words = `Drone at ${at[0].toFixed(5)}, ${at[1].toFixed(5)}` +
    (drone.phase ? `, ${label(drone.phase)}` : "") + (drone.speedMph ? `, ${Math.round(drone.speedMph)} mph` : "");
  if (positionText) positionText.textContent = words;
  if (mapElement) mapElement.dataset.drone = `${at[0]},${at[1]}`;
  if (!map) return;
  if (!droneMarker) {
    droneMarker = place(map, at, COLOURS.drone, "drone", 10);
    droneMarker.getElement?.()?.classList.add("drone-marker");
  } else {
    droneMarker.setLatLng(at);
  }
  trail?.addLatLng(at);
}

// --- status ----------------------------------------------------------------------------------

function setEta(id, iso) {
  const element = document.getElementById(id);
  if (!element || !iso) return;
  element.setAttribute("datetime", iso);
  element.textContent = formatWhen(iso);
}

// Seconds since the drone's latest fix (null: no fix, or the delivery is over).
function fixAge() {
  const at = Date.parse(current.drone?.at || "");
  if (Number.isNaN(at) || TERMINAL.has(current.stage)) return null;
  return Math.max(0, (now() - at) / 1000);
}

// The banner says why the page may be out of date: the stream dropped (the browser is
// reconnecting), or the drone's position is stale (the service says so, or no fix has come for
// longer than the staleness limit: the stream is up but the drone is silent).
function updateBanner() {
  if (!banner) return;
  let message = "";
  let reason = "";
  const age = fixAge();
  if (streamLost) {
    message = "Tracking lost — the connection dropped; reconnecting…";
    reason = "stream";
  } else if (current.telemetry === "stale" || (age !== null && age > staleSeconds)) {
    message = `Tracking lost — no report from the drone for over ${staleSeconds} s; showing its last known position.`;
    reason = "stale";
  }
  if (banner.textContent !== message) banner.textContent = message;
  banner.hidden = !message;
  banner.dataset.reason = reason;
}

function timelineItem(stage, phase, at) {
  const item = document.createElement("li");
  item.dataset.stage = stage;
  item.append(text("span", label(stage), "stage"));
  if (phase) item.append(" ", text("span", `(${label(phase)})`, "phase"));
  const when = document.createElement("time");
  when.setAttribute("datetime", at);
  when.textContent = formatWhen(at);
  item.append(when);
  return item;
}

function addTimelineEntry(stage, phase) {
  if (!timeline) return;
  timeline.querySelector("li.empty")?.remove();
  timeline.append(timelineItem(stage, phase, new Date(now()).toISOString()));
}

function renderTimeline(entries) {
  if (!timeline || !Array.isArray(entries) || !entries.length) return;
  timeline.replaceChildren(...entries.map((entry) => timelineItem(entry.stage, entry.phase, entry.at)));
}

function renderNotifications(list) {
  const holder = document.getElementById("notifications");
  if (!holder || !Array.isArray(list)) return;
  if (!list.length) {
    holder.replaceChildren(text("p", "None yet.", "muted"));
    return;
  }
  const table = document.createElement("table");
  table.className = "compact";
  table.append(text("caption", "Notifications for this delivery", "visually-hidden"));
  const head = document.createElement("thead");
  const headRow = document.createElement("tr");
  for (const name of ["Event", "Channel", "To", "Status", "When"]) {
    const cell = text("th", name);
    cell.scope = "col";
    headRow.append(cell);
  }
  head.append(headRow);
  const body = document.createElement("tbody");
  for (const n of list) {
    const row = document.createElement("tr");
    for (const value of [n.event, n.channel, n.to, n.status]) row.append(text("td", value ?? ""));
    const cell = document.createElement("td");
    const when = document.createElement("time");
    when.setAttribute("datetime", n.at || "");
    when.textContent = formatWhen(n.at);
    cell.append(when);
    row.append(cell);
    body.append(row);
  }
  table.append(head, body);
  holder.replaceChildren(table);
}

function coordinates(at) {
  return `${at[0].toFixed(5)}, ${at[1].toFixed(5)}`;
}

// The trip line and the details' places, as the page renders them: the name given, if any, and
// where.
function renderPlaces(places) {
  for (const name of ["pickup", "dropoff"]) {
    const given = places?.[name];
    if (!given?.at) continue;
    const trip = document.getElementById(`trip-${name}`);
    if (trip) trip.textContent = given.name || coordinates(given.at);
    const detail = document.getElementById(`${name}-place`);
    if (detail) {
      detail.replaceChildren(
        ...(given.name ? [`${given.name} `, text("span", `(${coordinates(given.at)})`, "muted")] : [coordinates(given.at)]),
      );
    }
  }
}

// A change of places refused after it was accepted: the owner's status carries it (refusedChange)
// while it is the latest word on changes; its words (what was asked, why, where the delivery
// goes instead) come with the details, worded as the server words them (refusal_words).
function hideRefusal() {
  refusalAsked = "";
  if (!refusalAlert || refusalAlert.hidden) return;
  refusalAlert.hidden = true;
  delete refusalAlert.dataset.at;
  document.getElementById("change-refused-words")?.replaceChildren();
}

// `words`: the refusal's words when they came with the status (polling the details).
function followRefusal(status, words) {
  if (!refusalAlert) return;
  const at = status.refusedChange?.at;
  if (!at) {
    hideRefusal();
  } else if (words) {
    renderRefusal(words);
  } else if (at !== refusalAlert.dataset.at && at !== refusalAsked) {
    refusalAsked = at;
    refreshDetails();
  }
}

function renderRefusal(refusal) {
  const at = current.refusedChange?.at;
  // Words for another refusal than the status's: the status has moved on, and asks again.
  if (!refusalAlert || !at || refusal?.at !== at || refusalAlert.dataset.at === at) return;
  const when = document.createElement("time");
  when.setAttribute("datetime", refusal.requestedAt || "");
  when.textContent = formatWhen(refusal.requestedAt);
  refusalAlert.hidden = false;
  refusalAlert.dataset.at = at;
  refusalAlert.dataset.reason = refusal.reason || "";
  document.getElementById("change-refused-words")?.replaceChildren(
    text("strong", "Your change was not made:"),
    ` ${refusal.asked} (asked for `, when, `). ${refusal.detail} ${refusal.goesOn}`,
  );
  // The change this page said was requested has its answer now: it was not made.
  for (const notice of document.querySelectorAll("main > .notice")) {
    if (notice.textContent.startsWith("Change requested")) notice.remove();
  }
}

// What the status alone does not carry: the timeline, the notifications, the words of a refused
// change and, after a reschedule, the places and the route. (The public page has its timeline
// from the stream.)
async function refreshDetails() {
  try {
    const details = await getJSON(data.statusUrl);
    if (!data.public) {
      renderTimeline(details.timeline);
      renderNotifications(details.notifications);
      renderPlaces(details.places);
      renderRefusal(details.refusal);
    }
    drawRoute(details.route);
  } catch {
    refusalAsked = ""; // the next status asks again; the next stage entry tries the rest again
  }
}

// Show a status (with its refused change's words, when they came with it); true when its stage
// is new (the details were asked for again).
function apply(status, refusalWords) {
  if (!status || !status.stage) return false;
  const previous = current;
  current = status;
  const staged = status.stage !== previous.stage;
  if (stageBadge && staged) {
    stageBadge.textContent = label(status.stage);
    stageBadge.dataset.stage = status.stage;
    stageBadge.className = `badge stage-${status.stage.toLowerCase()}`;
    addTimelineEntry(status.stage, status.drone?.phase);
    refreshDetails();
  }
  if (phaseText) phaseText.textContent = status.drone?.phase ? `drone ${label(status.drone.phase)}` : "";
  setEta("pickup-eta", status.pickupETA);
  setEta("delivery-eta", status.deliveryETA);
  const eta = Date.parse(status.deliveryETA || "");
  if (announcer && !Number.isNaN(eta) && Math.abs(eta - lastAnnouncedEta) >= 60000) {
    announcer.textContent = `Delivery expected ${formatUntil(status.deliveryETA)}.`;
    lastAnnouncedEta = eta;
  }
  if (telemetryText) {
    telemetryText.textContent = {
      live: "Live position from the drone.",
      stale: "The drone's position is out of date.",
      none: "The drone has not reported yet.",
    }[status.telemetry] ?? "";
  }
  showDrone(status.drone);
  followRefusal(status, refusalWords);
  updateBanner();
  tick();
  if (TERMINAL.has(status.stage)) finish();
  return staged && Boolean(stageBadge);
}

const PICKED_UP = new Set(["ToDropoff", "AtDropoff", "Returning"]);

function tick() {
  updateBanner();
  const pickupLeft = document.getElementById("pickup-eta-left");
  if (TERMINAL.has(current.stage)) {
    const left = document.getElementById("delivery-eta-left");
    if (left) left.textContent = current.stage === "Completed" ? "delivered" : "cancelled";
    if (pickupLeft) pickupLeft.textContent = "";
    return;
  }
  tickCountdowns();
  const pickedUp = current.stage === "HeadedToDropoff" || PICKED_UP.has(current.drone?.phase);
  if (pickupLeft && pickedUp) pickupLeft.textContent = "picked up";
}

// --- the stream, and polling while there is none ----------------------------------------------

function finish() {
  for (const id of ["change-link", "cancel-link", "notify-link"]) document.getElementById(id)?.remove(); // ended
  source?.close();
  source = null;
  if (polling) clearInterval(polling);
  polling = null;
  streamLost = false;
  updateBanner();
}

async function poll() {
  try {
    const answer = await getJSON(data.statusUrl);
    if (answer.now) setServerNow(answer.now);
    streamLost = false;
    apply(answer.status, answer.refusal);
  } catch {
    streamLost = true;
    updateBanner();
  }
}

function startPolling() {
  if (polling || TERMINAL.has(current.stage)) return;
  polling = setInterval(poll, POLL_MS);
  poll();
  setTimeout(() => {
    if (!TERMINAL.has(current.stage)) {
      clearInterval(polling);
      polling = null;
      connect();
    }
  }, STREAM_RETRY_MS);
}

function connect() {
  if (TERMINAL.has(current.stage) || !("EventSource" in window)) {
    if (!TERMINAL.has(current.stage)) startPolling();
    return;
  }
  source = new EventSource(data.streamUrl);
  source.addEventListener("open", () => {
    streamLost = false;
    updateBanner();
  });
  source.addEventListener("status", (event) => {
    streamLost = false;
    const refreshed = apply(JSON.parse(event.data));
    // An event id is "<stage entry>.<tracking version>": a new stage entry is a write to the
    // delivery (a stage, a reschedule), which may have moved what the status does not carry.
    // The first event after (re)connecting counts as new: the page may be older than it.
    const entry = event.lastEventId.split(".")[0];
    if (entry !== stageEntry) {
      stageEntry = entry;
      if (!refreshed) refreshDetails();
    }
  });
  source.addEventListener("end", () => finish());
  source.addEventListener("error", () => {
    if (!source) return;
    if (source.readyState === EventSource.CLOSED) {
      // Refused (no stream for this delivery here): follow the status by polling instead.
      source = null;
      startPolling();
    } else {
      streamLost = true; // the browser reconnects with Last-Event-ID
      updateBanner();
    }
  });
}

localiseTimes();
apply(current);
showDrone(current.drone);
setInterval(tick, 1000);
connect();
