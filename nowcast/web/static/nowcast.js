// The dashboard's shared script: page data, live updates, and small helpers.
// Each page's own script calls NC.start(render, url): render(data) draws the page,
// and is called again with fresh data from `url` whenever the server's event
// stream says something changed.
"use strict";

const NC = {
  data: JSON.parse(document.getElementById("page-data").textContent),
  offset: 0, // server clock minus this browser's, in seconds
  zone: "UTC",
  outcomes: [
    ["running", "running"],
    ["success", "success"],
    ["failure", "failure"],
    ["crash", "crash"],
    ["timeout", "timeout"],
    ["retried", "failed, retried"],
    ["held", "held in a race group"],
    ["retry", "waiting for a retry"],
    ["scheduled", "scheduled"],
    ["lost", "ended unseen"],
    ["other", "other message"],
  ],
};

NC.now = () => Date.now() / 1000 + NC.offset;

NC.el = (tag, attrs, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

NC.svg = (tag, attrs, ...children) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) if (child) node.append(child);
  return node;
};

NC.clock = (epoch, withDate, seconds = true) => {
  if (epoch === null || epoch === undefined) return "–";
  const options = { timeZone: NC.zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (seconds) options.second = "2-digit";
  if (withDate) Object.assign(options, { year: "numeric", month: "2-digit", day: "2-digit" });
  return new Intl.DateTimeFormat("sv-SE", options).format(new Date(epoch * 1000));
};

NC.duration = (seconds) => {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 7200) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
};

NC.ago = (epoch) => (epoch ? `${NC.duration(Math.max(0, NC.now() - epoch))} ago` : "–");

NC.workerLink = (name) => NC.el("a", { href: `/worker/${encodeURIComponent(name)}` }, name);

NC.table = (table, headers, rows) => {
  table.replaceChildren(
    NC.el("thead", {}, NC.el("tr", {}, headers.map((h) => NC.el("th", {}, h)))),
    NC.el(
      "tbody",
      {},
      rows.map((row) => {
        const cells = row.cells || row;
        return NC.el("tr", row.attrs || {}, cells.map((c) => NC.el("td", {}, c)));
      })
    )
  );
};

NC.chip = (cls, text) => NC.el("span", { class: `chip c-${cls}` }, text);

NC.legend = (node, keys) => {
  node.replaceChildren(
    ...NC.outcomes
      .filter(([k]) => !keys || keys.includes(k))
      .map(([k, label]) => NC.el("span", { class: "key" }, NC.el("i", { class: `swatch c-${k}` }), label))
  );
};

// the tooltip that follows the pointer
NC.tip = {
  node: document.getElementById("tooltip"),
  show(event, lines) {
    this.node.replaceChildren(...lines.map((l) => NC.el("div", {}, l)));
    this.node.hidden = false;
    const x = Math.min(event.clientX + 14, window.innerWidth - this.node.offsetWidth - 8);
    const y = Math.min(event.clientY + 14, window.innerHeight - this.node.offsetHeight - 8);
    this.node.style.left = `${x}px`;
    this.node.style.top = `${y}px`;
  },
  hide() {
    this.node.hidden = true;
  },
};

NC.banner = (data) => {
  const node = document.getElementById("banner");
  const notes = [];
  if (data.history === false) notes.push("No history database yet: the manager has not recorded a run.");
  if (data.manager_answering === false) notes.push("The manager does not answer: live status (retries, race groups) unknown.");
  node.textContent = notes.join(" ");
  node.hidden = notes.length === 0;
};

// live updates: the server's event stream says when to fetch the page's data again
NC.start = (render, url) => {
  let busy = false;
  let again = false;
  const draw = (data) => {
    NC.data = data;
    NC.offset = data.now - Date.now() / 1000;
    if (data.zone) NC.zone = data.zone;
    NC.banner(data);
    render(data);
    document.body.dataset.version = data.version;
  };
  const refresh = async () => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const response = await fetch(url, { cache: "no-store" });
      if (response.ok) draw(await response.json());
    } catch (e) {
      console.warn("refresh failed", e);
    } finally {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  };
  NC.refresh = refresh;
  draw(NC.data);
  const live = document.getElementById("live");
  const source = new EventSource("/events");
  source.addEventListener("open", () => {
    live.className = "live on";
    live.title = "live updates: connected";
  });
  source.addEventListener("error", () => {
    live.className = "live off";
    live.title = "live updates: reconnecting";
  });
  source.addEventListener("version", (event) => {
    if (Number(event.data) !== NC.data.version) refresh();
  });
};
