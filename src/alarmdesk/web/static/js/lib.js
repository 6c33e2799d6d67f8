// Shared by every console page: CSRF, toasts, shortcuts, sound, local times, ages, the live
// stream. Pages import this module by the same URL, so it runs once per page.

export const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
const serverNow = Date.parse(document.querySelector('meta[name="server-now"]')?.content || "");
// The server's clock minus ours: ages are counted on the server's clock, not a skewed PC's.
export const clockOffset = Number.isFinite(serverNow) ? serverNow - Date.now() : 0;
export const now = () => Date.now() + clockOffset;

export const STREAM_EVENTS = [
  "incident.opened",
  "incident.updated",
  "incident.transitioned",
  "incident.units_assigned",
  "incident.noted",
  "incident.reclassified",
  "incident.escalated",
  "incident.step_done",
  "incident.unit_status",
];

export function boot() {
  const el = document.getElementById("boot");
  return el ? JSON.parse(el.textContent) : {};
}

// -- DOM helpers -----------------------------------------------------------------------------

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A piece of stored text inside a longer line, isolated (FSI … PDI): a bidi override it may
 * hold (stored before intake refused them) reorders only itself, never what follows it. The
 * templates' <bdi> for text built in a script. */
export const isolate = (text) => `\u2068${text}\u2069`;

/** A text node wrapped in a span: what Leaflet tooltips and icons get, never an HTML string. */
export function textNode(text) {
  return h("span", {}, String(text));
}

export function toast(message, kind = "info", ms = 6000) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = h("div", { class: `toast ${kind}` }, message);
  box.append(el);
  setTimeout(() => el.remove(), ms);
}

// -- times -----------------------------------------------------------------------------------

export function fmtAge(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export function localTime(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

export function localizeTimes(root = document) {
  for (const t of root.querySelectorAll("time[datetime]:not([data-local])")) {
    t.title = t.getAttribute("datetime");
    t.textContent = localTime(t.getAttribute("datetime"));
    t.dataset.local = "1";
  }
}

// An age with data-warn / data-alarm (seconds, the escalation policy's first and last
// thresholds) turns amber, then red, while the incident waits for acknowledgement.
export function tickAges(root = document) {
  const n = now();
  for (const el of root.querySelectorAll(".age[data-since]")) {
    const ms = n - Date.parse(el.dataset.since);
    el.textContent = fmtAge(ms);
    if (el.dataset.warn) {
      const s = ms / 1000;
      el.classList.toggle("age-red", s >= Number(el.dataset.alarm));
      el.classList.toggle("age-amber", s >= Number(el.dataset.warn) && s < Number(el.dataset.alarm));
    }
  }
}

// -- sound -----------------------------------------------------------------------------------

const MUTE_KEY = "alarmdesk.muted";
export const isMuted = () => localStorage.getItem(MUTE_KEY) === "1";
let audio = null;

export function beep() {
  if (isMuted()) return;
  try {
    audio = audio || new AudioContext();
    const t0 = audio.currentTime;
    for (const [i, freq] of [880, 660, 880].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t0 + i * 0.22);
      gain.gain.exponentialRampToValueAtTime(0.2, t0 + i * 0.22 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + i * 0.22 + 0.2);
      osc.connect(gain).connect(audio.destination);
      osc.start(t0 + i * 0.22);
      osc.stop(t0 + i * 0.22 + 0.21);
    }
  } catch {
    /* no audio device: the colour and the banner still show it */
  }
}

function showMute() {
  const b = document.getElementById("mute");
  if (!b) return;
  b.setAttribute("aria-pressed", String(isMuted()));
  b.textContent = isMuted() ? "Sound off" : "Sound on";
}

export function toggleMute() {
  localStorage.setItem(MUTE_KEY, isMuted() ? "0" : "1");
  showMute();
  toast(isMuted() ? "Sound for new P1 incidents is off" : "Sound for new P1 incidents is on");
}

// -- keyboard --------------------------------------------------------------------------------

const keyHandlers = {};
let pendingG = 0;

export function onKeys(map) {
  Object.assign(keyHandlers, map);
}

function typing(target) {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))
  );
}

export function openDialog(d) {
  if (!d.open) d.showModal();
}

function onKeydown(e) {
  if (e.defaultPrevented || e.altKey || e.metaKey) return;
  if (e.ctrlKey) {
    if (e.key === "Enter" && typing(e.target)) {
      const form = e.target.closest("form");
      if (form && !form.closest("dialog")) {
        e.preventDefault();
        form.requestSubmit();
      }
    }
    return;
  }
  if (typing(e.target) || document.querySelector("dialog[open]")) return;
  const key = e.key;
  if ((key === "Enter" || key === " ") && e.target instanceof Element && e.target.closest("button, a, summary")) return;
  if (pendingG && Date.now() - pendingG < 1500) {
    pendingG = 0;
    const go = { q: "/", m: "/map", c: "/calls/new", r: "/reports/new" }[key];
    const link = go && document.querySelector(`.top nav a[href="${go}"]`);
    if (link) {
      e.preventDefault();
      location.assign(go);
    }
    return;
  }
  if (key === "g") {
    pendingG = Date.now();
    return;
  }
  if (key === "?") {
    e.preventDefault();
    openDialog(document.getElementById("help"));
    return;
  }
  if (key === "m" && document.getElementById("mute")) {
    e.preventDefault();
    toggleMute();
    return;
  }
  const fn = keyHandlers[key];
  if (fn) {
    e.preventDefault();
    fn(e);
  }
}

// -- the live stream -------------------------------------------------------------------------

function setLive(state, text) {
  const el = document.getElementById("live");
  if (el) {
    el.hidden = false;
    el.dataset.state = state;
    el.textContent = text;
  }
  const stale = state !== "live";
  document.body.classList.toggle("stale", stale);
  const banner = document.getElementById("stale-banner");
  if (banner) banner.hidden = !stale;
}

export function liveIndicator(state) {
  const texts = { live: "Live", reconnecting: "Reconnecting…", closed: "Offline" };
  setLive(state, texts[state] || state);
}

/**
 * Subscribes to /api/v1/stream from `lastEventId` on; calls onEvent(type, data) for every
 * event in order. The browser resends Last-Event-ID when it reconnects, so nothing is missed;
 * if the stream is refused (session ended), it checks the session and sends you to sign in.
 */
export function openStream(lastEventId, onEvent) {
  let last = lastEventId;
  let es = null;
  let retry = 1000;
  const connect = () => {
    es = new EventSource(`/api/v1/stream?last_event_id=${encodeURIComponent(last)}`);
    es.onopen = () => {
      retry = 1000;
      liveIndicator("live");
    };
    es.onerror = async () => {
      if (es.readyState === EventSource.CONNECTING) {
        liveIndicator("reconnecting");
        return;
      }
      liveIndicator("closed");
      es.close();
      const r = await fetch("/api/v1/session", { headers: { Accept: "application/json" } }).catch(() => null);
      if (r && r.status === 401) {
        location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
        return;
      }
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    };
    for (const type of STREAM_EVENTS) {
      es.addEventListener(type, (msg) => {
        last = Number(msg.lastEventId) || last;
        let data;
        try {
          data = JSON.parse(msg.data);
        } catch {
          return;
        }
        onEvent(type, data);
      });
    }
  };
  connect();
  return () => es && es.close();
}

// -- desks -----------------------------------------------------------------------------------

export function mineDesks(desks, myDesks) {
  return myDesks.includes("*") || (desks || []).some((d) => myDesks.includes(d));
}

// -- start -----------------------------------------------------------------------------------

let started = false;
export function init() {
  if (started) return;
  started = true;
  document.addEventListener("keydown", onKeydown);
  document.getElementById("help-button")?.addEventListener("click", () => openDialog(document.getElementById("help")));
  document.getElementById("mute")?.addEventListener("click", toggleMute);
  showMute();
  localizeTimes();
  tickAges();
  setInterval(() => tickAges(), 1000);
  document.body.addEventListener("htmx:afterSwap", (e) => {
    localizeTimes(e.target);
    tickAges(e.target);
  });
  document.body.addEventListener("htmx:oobAfterSwap", (e) => localizeTimes(e.target));
}
