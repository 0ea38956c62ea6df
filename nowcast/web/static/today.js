// Today: a timeline (Gantt) of the day's runs, one row per worker, a bar per try.
"use strict";

const ROW = 28;
const LABEL = 170;
const AXIS = 28;
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600];

let range = "runs";
let selected = null;

function span(data) {
  const now = data.now;
  if (range === "day" || data.runs.length === 0) return [data.day_start, data.day_end];
  let t0 = Math.min(...data.runs.map((r) => r.started ?? r.launched ?? now));
  let t1 = Math.max(now, ...data.runs.map((r) => r.ended ?? now));
  for (const r of data.retries) t1 = Math.max(t1, r.due);
  const pad = Math.max((t1 - t0) * 0.06, 2);
  return [t0 - pad, Math.max(t1 + pad, t0 + 30)];
}

function runClass(r) {
  if (r.retried) return "retried";
  if (r.held) return "held";
  return r.class;
}

function tipLines(r) {
  const lines = [
    `${r.worker}${r.args.length ? " " + r.args.join(" ") : ""}`,
    `try ${r.try} · ${r.outcome ?? (r.class === "running" ? "running" : r.class)}${r.retried ? " (retried)" : ""}${r.held ? " (held: race group)" : ""}`,
    `host ${r.host} · ${r.job_id ? "job " + r.job_id : "pid " + (r.pid ?? "–")}`,
    `launched by ${r.launched_by}`,
    `${NC.clock(r.started)} → ${r.ended ? NC.clock(r.ended) : "now"}`,
  ];
  const d = r.duration ?? NC.now() - r.started;
  lines.push(`duration ${NC.duration(d)}${r.median ? ` (30-day median ${NC.duration(r.median)})` : ""}`);
  if (r.exit_code !== null && r.exit_code !== undefined) lines.push(`exit code ${r.exit_code}`);
  if (r.signal) lines.push(`signal ${r.signal}`);
  return lines;
}

async function showDetails(runId) {
  selected = runId;
  const node = document.getElementById("details");
  node.hidden = false;
  node.replaceChildren(NC.el("p", {}, "loading…"));
  const response = await fetch(`/api/run/${encodeURIComponent(runId)}.json`, { cache: "no-store" });
  if (!response.ok) {
    node.replaceChildren(NC.el("p", {}, `no details for run ${runId}`));
    return;
  }
  const r = await response.json();
  r.median = (NC.data.runs.find((x) => x.id === r.id) || {}).median;
  const messages = r.messages.map((m) =>
    NC.el("li", {}, `${NC.clock(m.time)} `, NC.chip(m.type.split(" ")[0], m.type), m.payload ? ` ${m.payload}` : "")
  );
  node.replaceChildren(
    NC.el("h2", {}, `${r.worker} — try ${r.try} `, NC.chip(runClass(r), r.outcome ?? r.class)),
    NC.el("div", { class: "facts" }, tipLines(r).map((l) => NC.el("div", {}, l))),
    NC.el("h3", {}, "Messages"),
    messages.length ? NC.el("ul", { class: "messages" }, messages) : NC.el("p", {}, "none (yet)"),
    NC.el("h3", {}, "Log", r.log.file ? NC.el("span", { class: "sub" }, ` ${r.log.file}`) : ""),
    NC.el("pre", { class: "log" }, r.log.lines.length ? r.log.lines.join("\n") : "no log lines found"),
    NC.el("p", {}, NC.workerLink(r.worker), " — all its runs")
  );
}

function render(data) {
  NC.legend(document.getElementById("legend"));
  const done = data.runs.filter((r) => r.ended).length;
  const failed = data.runs.filter((r) => !r.retried && ["failure", "crash", "timeout", "lost"].includes(r.class)).length;
  const retried = data.runs.filter((r) => r.retried).length;
  const running = data.runs.filter((r) => r.class === "running").length;
  document.getElementById("day").textContent = `${data.day} (${data.zone})`;
  document.getElementById("summary").replaceChildren(
    NC.el("span", {}, `${data.runs.length} runs`),
    NC.el("span", {}, `${running} running`),
    NC.el("span", {}, `${done} ended`),
    NC.el("span", { class: failed ? "bad" : "" }, `${failed} failed`),
    retried ? NC.el("span", {}, `${retried} retried`) : "",
    data.groups.length ? NC.el("span", {}, `${data.groups.length} race group(s) waiting`) : "",
    data.scheduled.length ? NC.el("span", {}, `next scheduled: ${data.scheduled[0].worker} at ${NC.clock(data.scheduled[0].at)}`) : ""
  );

  const box = document.getElementById("timeline");
  const width = Math.max(box.clientWidth, 600);
  const rows = data.workers;
  const height = AXIS + rows.length * ROW + 8;
  const [t0, t1] = span(data);
  const x = (t) => LABEL + ((t - t0) / (t1 - t0)) * (width - LABEL - 12);
  const svg = NC.svg("svg", { width, height, class: "gantt", "data-t0": t0, "data-t1": t1 });

  // axis
  const step = STEPS.find((s) => (t1 - t0) / s <= 10) || 21600;
  const axis = NC.svg("g", { class: "axis" });
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    axis.append(
      NC.svg("line", { x1: x(t), x2: x(t), y1: AXIS - 6, y2: height, class: "grid" }),
      NC.svg("text", { x: x(t), y: AXIS - 10, "text-anchor": "middle", text: NC.clock(t, false, step < 60) })
    );
  }
  svg.append(axis);

  // rows
  rows.forEach((name, i) => {
    const y = AXIS + i * ROW;
    const label = NC.svg("a", { href: `/worker/${encodeURIComponent(name)}` });
    label.append(NC.svg("text", { x: 8, y: y + ROW / 2 + 4, class: "label", text: name }));
    svg.append(NC.svg("rect", { x: 0, y, width, height: ROW, class: i % 2 ? "row odd" : "row" }), label);
  });
  const rowOf = (name) => AXIS + rows.indexOf(name) * ROW;

  // bars: one per try
  const bars = NC.svg("g", { class: "bars" });
  for (const r of data.runs) {
    const start = r.started ?? r.launched;
    const end = r.ended ?? NC.now();
    const cls = runClass(r);
    const bar = NC.svg("rect", {
      x: x(start),
      y: rowOf(r.worker) + 5,
      width: Math.max(3, x(end) - x(start)),
      height: ROW - 10,
      rx: 3,
      class: `bar c-${cls}${r.id === selected ? " selected" : ""}`,
      "data-run": r.id,
      "data-worker": r.worker,
      "data-class": cls,
      "data-try": r.try,
      "data-start": start,
    });
    bar.addEventListener("mousemove", (e) => NC.tip.show(e, tipLines(r)));
    bar.addEventListener("mouseleave", () => NC.tip.hide());
    bar.addEventListener("click", () => showDetails(r.id));
    bars.append(bar);
  }
  svg.append(bars);

  // what is still to come: scheduled launches and retries waiting
  for (const s of data.scheduled) {
    if (s.at < t0 || s.at > t1) continue;
    const cx = x(s.at);
    const cy = rowOf(s.worker) + ROW / 2;
    const mark = NC.svg("path", {
      d: `M${cx} ${cy - 7} L${cx + 7} ${cy} L${cx} ${cy + 7} L${cx - 7} ${cy} Z`,
      class: "marker c-scheduled",
      "data-worker": s.worker,
      "data-at": s.at,
    });
    mark.addEventListener("mousemove", (e) => NC.tip.show(e, [`${s.worker}: scheduled at ${NC.clock(s.at)}`]));
    mark.addEventListener("mouseleave", () => NC.tip.hide());
    svg.append(mark);
  }
  for (const r of data.retries) {
    const cx = Math.min(x(r.due), width - 14);
    const y = rowOf(r.worker) + 5;
    const mark = NC.svg("rect", {
      x: cx,
      y,
      width: 12,
      height: ROW - 10,
      rx: 3,
      class: "marker c-retry",
      "data-worker": r.worker,
    });
    mark.addEventListener("mousemove", (e) => NC.tip.show(e, [`${r.worker}: try ${r.try} due at ${NC.clock(r.due)}`]));
    mark.addEventListener("mouseleave", () => NC.tip.hide());
    svg.append(mark);
  }
  if (data.now >= t0 && data.now <= t1) {
    svg.append(NC.svg("line", { x1: x(NC.now()), x2: x(NC.now()), y1: AXIS - 6, y2: height, class: "now" }));
  }
  box.replaceChildren(svg);
  box.scale = { x, t0, t1 };
}

// running bars grow with the clock, between updates from the server
setInterval(() => {
  const box = document.getElementById("timeline");
  if (!box.scale) return;
  const { x, t1 } = box.scale;
  const now = NC.now();
  if (now > t1 && range === "runs") {
    render(NC.data); // the running bars reached the edge: widen the view
    return;
  }
  for (const bar of box.querySelectorAll("rect.bar.c-running")) {
    bar.setAttribute("width", Math.max(3, x(now) - x(Number(bar.dataset.start))));
  }
  const line = box.querySelector("line.now");
  if (line) line.setAttribute("x1", x(now)), line.setAttribute("x2", x(now));
}, 200);

for (const input of document.querySelectorAll("input[name=range]")) {
  input.addEventListener("change", () => {
    range = input.value;
    render(NC.data);
  });
}
window.addEventListener("resize", () => render(NC.data));
NC.start(render, "/api/today.json");
