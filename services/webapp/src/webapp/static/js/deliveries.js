// My deliveries: refresh the list every few seconds (one request for the whole page) and count
// the ETAs down every second. Changes of stage are announced politely.
import { countdown, formatWhen, getJSON, label, localiseTimes, setServerNow, text, tickCountdowns } from "./common.js";

const table = document.getElementById("deliveries");
const announcer = document.getElementById("list-announcer");
const updated = document.getElementById("list-updated");
const seconds = Number(table?.dataset.refreshSeconds || 5);
const cursor = table?.dataset.cursor || "";
const TERMINAL = new Set(["Completed", "Cancelled"]);

function row(item) {
  const tr = document.createElement("tr");
  tr.dataset.id = item.id;
  const link = document.createElement("a");
  link.href = `/deliveries/${encodeURIComponent(item.id)}`;
  link.textContent = `${item.id.slice(0, 8)}…`;
  const first = document.createElement("td");
  first.append(link);
  const place = text("td", item.dropoffPlace || "—", "place");
  if (item.pickupPlace) place.title = `from ${item.pickupPlace}`;
  const created = document.createElement("td");
  const createdTime = document.createElement("time");
  createdTime.setAttribute("datetime", item.createdAt || "");
  createdTime.textContent = formatWhen(item.createdAt);
  created.append(createdTime);
  const stage = document.createElement("td");
  stage.className = "stage";
  stage.dataset.stage = item.stage;
  stage.append(text("span", label(item.stage), `badge stage-${String(item.stage).toLowerCase()}`));
  const eta = document.createElement("td");
  eta.className = "eta";
  if (TERMINAL.has(item.stage) || !item.deliveryETA) {
    eta.textContent = "—";
  } else {
    eta.append(...countdown(item.deliveryETA));
  }
  const drone = text("td", item.droneId || "—");
  drone.className = "drone";
  tr.append(first, place, created, stage, eta, drone);
  return tr;
}

async function refresh() {
  try {
    const page = await getJSON(`/deliveries.json${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`);
    setServerNow(page.now);
    const body = table.tBodies[0];
    const before = new Map([...body.rows].map((r) => [r.dataset.id, r.querySelector(".stage")?.dataset.stage]));
    const changes = [];
    const rows = page.items.map((item) => {
      const was = before.get(item.id);
      if (was && was !== item.stage) changes.push(`Delivery ${item.id.slice(0, 8)} is now ${label(item.stage)}.`);
      return row(item);
    });
    // Deliveries still being scheduled stay listed until the list shows them.
    const pending = [...body.rows].filter((r) => r.classList.contains("pending") && !page.items.some((i) => i.id === r.dataset.id));
    if (rows.length || pending.length) body.replaceChildren(...pending, ...rows);
    if (changes.length && announcer) announcer.textContent = changes.join(" ");
    if (updated) updated.textContent = `Updated ${formatWhen(page.now)}.`;
    tickCountdowns(table);
  } catch {
    if (updated) updated.textContent = "Could not refresh; trying again shortly.";
  }
}

if (table) {
  localiseTimes();
  tickCountdowns(table);
  setInterval(() => tickCountdowns(table), 1000);
  setInterval(refresh, seconds * 1000);
}
