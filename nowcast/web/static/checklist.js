// Checklist: today's checklist as a collapsible tree with search, and the last
// 20 messages the manager received.
"use strict";

const open = new Set(); // paths the reader opened, kept across live updates
let first = true; // the first drawing opens the top level
let query = "";

function scalar(value) {
  if (value === null) return NC.el("span", { class: "null" }, "null");
  if (typeof value === "string") return NC.el("span", { class: "str" }, value);
  return NC.el("span", { class: "num" }, JSON.stringify(value));
}

function matches(key, value) {
  if (!query) return true;
  if (String(key).toLowerCase().includes(query)) return true;
  if (value !== null && typeof value === "object") {
    return Object.entries(value).some(([k, v]) => matches(k, v));
  }
  return String(value).toLowerCase().includes(query);
}

function node(key, value, path) {
  if (!matches(key, value)) return null;
  const here = `${path}/${key}`;
  if (value === null || typeof value !== "object") {
    return NC.el("li", { class: "leaf", "data-path": here }, NC.el("span", { class: "key" }, `${key}: `), scalar(value));
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  const details = NC.el(
    "details",
    { "data-path": here, open: open.has(here) || Boolean(query) },
    NC.el("summary", {}, NC.el("span", { class: "key" }, String(key)), NC.el("span", { class: "count" }, ` ${Array.isArray(value) ? "[" + entries.length + "]" : "{" + entries.length + "}"}`)),
    NC.el("ul", {}, entries.map(([k, v]) => node(k, v, here)))
  );
  details.addEventListener("toggle", () => {
    if (query) return;
    if (details.open) open.add(here);
    else open.delete(here);
  });
  return NC.el("li", {}, details);
}

function render(data) {
  document.getElementById("file").textContent = data.file;
  const tree = document.getElementById("tree");
  if (data.error) {
    tree.replaceChildren(NC.el("p", { class: "bad" }, data.error));
  } else {
    const entries = Object.entries(data.checklist || {});
    if (first) {
      for (const [k] of entries) open.add(`/${k}`);
      first = false;
    }
    const items = entries.map(([k, v]) => node(k, v, ""));
    tree.replaceChildren(
      entries.length ? NC.el("ul", { class: "root" }, items) : NC.el("p", {}, "The checklist is empty."),
      query && !items.some(Boolean) ? NC.el("p", {}, `nothing matches “${query}”`) : ""
    );
  }
  NC.table(
    document.getElementById("messages"),
    ["time", "source", "type", "payload"],
    data.messages.map((m) => ({
      attrs: { "data-source": m.source, "data-class": m.class },
      cells: [NC.clock(m.time, true), NC.workerLink(m.source), NC.chip(m.class, m.type), NC.el("code", { class: "payload", title: m.payload ?? "" }, m.payload ?? "")],
    }))
  );
}

document.getElementById("search").addEventListener("input", (e) => {
  query = e.target.value.trim().toLowerCase();
  render(NC.data);
});
document.getElementById("expand").addEventListener("click", () => {
  for (const d of document.querySelectorAll("#tree details")) {
    d.open = true;
    open.add(d.dataset.path);
  }
});
document.getElementById("collapse").addEventListener("click", () => {
  for (const d of document.querySelectorAll("#tree details")) d.open = false;
  open.clear();
});
NC.start(render, "/api/checklist.json");
