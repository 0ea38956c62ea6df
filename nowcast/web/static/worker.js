// Worker: durations of its runs over the last 90 days, an outcome strip, and its
// last failures with their log lines.
"use strict";

const FAILED = ["failure", "crash", "timeout", "lost"];

function cls(r) {
  return r.retried ? "retried" : r.class;
}

function chart(data) {
  const box = document.getElementById("chart");
  const runs = data.runs.filter((r) => r.duration !== null);
  if (runs.length === 0) {
    box.replaceChildren(NC.el("p", {}, "No finished runs in this period."));
    return;
  }
  const width = Math.max(box.clientWidth, 600);
  const height = 240;
  const left = 64;
  const bottom = 26;
  const t1 = data.now;
  const t0 = t1 - data.days * 86400;
  const top = Math.max(...runs.map((r) => r.duration)) * 1.1 || 1;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - 10);
  const y = (d) => height - bottom - (d / top) * (height - bottom - 10);
  const svg = NC.svg("svg", { width, height, class: "durations" });
  for (let i = 0; i <= 4; i++) {
    const d = (top / 4) * i;
    svg.append(
      NC.svg("line", { x1: left, x2: width - 10, y1: y(d), y2: y(d), class: "grid" }),
      NC.svg("text", { x: left - 6, y: y(d) + 4, "text-anchor": "end", class: "tick", text: NC.duration(d) })
    );
  }
  for (let day = 0; day <= data.days; day += 15) {
    const t = t0 + day * 86400;
    svg.append(NC.svg("text", { x: x(t), y: height - 8, "text-anchor": "middle", class: "tick", text: NC.clock(t, true).slice(0, 10) }));
  }
  if (data.median) {
    svg.append(NC.svg("line", { x1: left, x2: width - 10, y1: y(data.median), y2: y(data.median), class: "median" }));
  }
  const line = runs.filter((r) => r.class === "success").map((r) => `${x(r.started)},${y(r.duration)}`);
  if (line.length > 1) svg.append(NC.svg("polyline", { points: line.join(" "), class: "trend" }));
  for (const r of runs) {
    const dot = NC.svg("circle", { cx: x(r.started), cy: y(r.duration), r: 3.5, class: `dot c-${cls(r)}`, "data-run": r.id });
    dot.addEventListener("mousemove", (e) =>
      NC.tip.show(e, [NC.clock(r.started, true), `${r.outcome ?? r.class}, try ${r.try}`, NC.duration(r.duration)])
    );
    dot.addEventListener("mouseleave", () => NC.tip.hide());
    svg.append(dot);
  }
  box.replaceChildren(svg);
}

function strip(data) {
  const box = document.getElementById("strip");
  box.replaceChildren(
    ...data.runs.map((r) => {
      const cell = NC.el("span", { class: `cell c-${cls(r)}`, "data-run": r.id, "data-class": cls(r) });
      cell.addEventListener("mousemove", (e) =>
        NC.tip.show(e, [NC.clock(r.started, true), `${r.outcome ?? r.class}, try ${r.try}`, NC.duration(r.duration)])
      );
      cell.addEventListener("mouseleave", () => NC.tip.hide());
      return cell;
    })
  );
  if (data.runs.length === 0) box.append(NC.el("p", {}, "No runs in this period."));
}

const logs = new Map(); // run id -> its log lines, fetched once

async function failures(data) {
  const box = document.getElementById("failures");
  if (data.failures.length === 0) {
    box.replaceChildren(NC.el("p", {}, "No failures in this period."));
    return;
  }
  const items = data.failures.map((r) => {
    const pre = NC.el("pre", { class: "log" }, logs.get(r.id) ?? "loading…");
    return {
      run: r,
      pre,
      node: NC.el(
        "div",
        { class: "failure", "data-run": r.id },
        NC.el("h3", {}, NC.chip(cls(r), r.outcome ?? r.class), ` ${NC.clock(r.started, true)} · try ${r.try} · ${NC.duration(r.duration)}`,
          r.exit_code !== null ? ` · exit ${r.exit_code}` : "", r.args.length ? ` · ${r.args.join(" ")}` : ""),
        pre
      ),
    };
  });
  box.replaceChildren(...items.map((i) => i.node));
  for (const item of items) {
    if (logs.has(item.run.id)) continue;
    const response = await fetch(`/api/run/${encodeURIComponent(item.run.id)}.json`, { cache: "no-store" });
    if (!response.ok) continue;
    const detail = await response.json();
    const messages = detail.messages.map((m) => `message: ${m.type} ${m.payload ?? ""}`);
    const text = [...detail.log.lines.slice(-40), ...messages].join("\n") || "no log lines found";
    logs.set(item.run.id, text);
    item.pre.textContent = text;
  }
}

function render(data) {
  const ran = data.runs.length;
  const failed = data.runs.filter((r) => FAILED.includes(r.class)).length;
  document.getElementById("stats").replaceChildren(
    NC.el("span", {}, `${ran} runs`),
    NC.el("span", { class: failed ? "bad" : "" }, `${failed} failed`),
    NC.el("span", {}, `median ${NC.duration(data.median)}`),
    NC.el("span", {}, `90th percentile ${NC.duration(data.p90)}`),
    data.registered ? "" : NC.el("span", { class: "bad" }, "not in the message registry")
  );
  chart(data);
  strip(data);
  failures(data);
}

NC.start(render, `/api/worker/${encodeURIComponent(NC.data.worker)}.json`);
