// Shared by the pages' scripts: the page's data, times in the reader's zone, countdowns, JSON.

export function pageData() {
  const element = document.getElementById("page-data");
  return element ? JSON.parse(element.textContent) : {};
}

// The browser's clock may be off: measure it against the server's "now" once per page.
let clockSkewMs = 0;
export function setServerNow(iso) {
  const server = Date.parse(iso);
  if (!Number.isNaN(server)) clockSkewMs = server - Date.now();
}
export function now() {
  return Date.now() + clockSkewMs;
}

const absolute = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

export function formatWhen(iso) {
  const at = Date.parse(iso);
  return Number.isNaN(at) ? "—" : absolute.format(new Date(at));
}

export function formatUntil(iso) {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return "";
  const seconds = Math.round((at - now()) / 1000);
  const span = Math.abs(seconds);
  const hours = Math.floor(span / 3600);
  const minutes = Math.floor((span % 3600) / 60);
  const secs = String(span % 60).padStart(2, "0");
  const text = hours ? `${hours} h ${String(minutes).padStart(2, "0")} min` : `${minutes} min ${secs} s`;
  return seconds >= 0 ? `in ${text}` : `${text} ago`;
}

// Every <time data-countdown> shows the local time; its [data-countdown-for] sibling counts down.
export function localiseTimes(root = document) {
  for (const element of root.querySelectorAll("time[datetime]")) {
    const iso = element.getAttribute("datetime");
    if (iso) element.textContent = formatWhen(iso);
  }
}

export function tickCountdowns(root = document) {
  for (const element of root.querySelectorAll("time[data-countdown]")) {
    const iso = element.getAttribute("datetime");
    const left = element.parentElement?.querySelector(".countdown");
    if (iso && left) left.textContent = formatUntil(iso);
  }
}

// A time that counts down: <time datetime data-countdown> (the local time, visually hidden when
// only the countdown shows) and its .countdown, which tickCountdowns keeps current.
export function countdown(iso, { timeShown = true } = {}) {
  const when = document.createElement("time");
  when.setAttribute("datetime", iso);
  when.dataset.countdown = "";
  when.textContent = formatWhen(iso);
  if (!timeShown) when.className = "visually-hidden";
  return [when, " ", text("span", formatUntil(iso), "countdown")];
}

export async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) {
    const error = new Error(`${url} answered ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

// What a person reads for the API's stage and phase names: the server's table (web.py's
// LABELS), which every page carries; a name not in it as it is.
let labels = null;
export function label(name) {
  labels ??= JSON.parse(document.getElementById("labels")?.textContent || "{}");
  const key = String(name ?? "");
  return Object.hasOwn(labels, key) ? labels[key] : key;
}

export function text(tag, content, className) {
  const element = document.createElement(tag);
  element.textContent = content;
  if (className) element.className = className;
  return element;
}
