// Graph: what launched what (from the history), laid out by dagre, coloured by
// today's last outcome of each worker. A race-condition group is drawn as a join:
// its members' edges meet at one point before the worker they launch together.
"use strict";

function layout(data) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 56, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const name of data.nodes) {
    const special = ["scheduler", "by hand", "unknown"].includes(name);
    g.setNode(name, { label: name, width: 22 + name.length * 7.4, height: 34, special });
  }
  const joined = new Set();
  for (const join of data.joins) {
    const id = `join: ${join.to}`;
    g.setNode(id, { width: 10, height: 10, join: join.to, members: join.from });
    for (const member of join.from) {
      if (!g.hasNode(member)) g.setNode(member, { label: member, width: 22 + member.length * 7.4, height: 34 });
      g.setEdge(member, id, { from: member, to: join.to, join: true });
      joined.add(`${member}\u0000${join.to}`);
    }
    g.setEdge(id, join.to, { from: join.from.join("+"), to: join.to, join: true });
  }
  for (const e of data.edges) {
    if (joined.has(`${e.from}\u0000${e.to}`) || e.from === e.to) continue;
    g.setEdge(e.from, e.to, { from: e.from, to: e.to, count: e.count });
  }
  dagre.layout(g);
  return g;
}

function path(points) {
  const [first, ...rest] = points;
  let d = `M${first.x},${first.y}`;
  if (rest.length >= 2) {
    // a smooth curve through dagre's points
    for (let i = 0; i < rest.length - 1; i++) {
      const p = rest[i];
      const q = rest[i + 1];
      d += ` Q${p.x},${p.y} ${(p.x + q.x) / 2},${(p.y + q.y) / 2}`;
    }
    const last = rest[rest.length - 1];
    d += ` L${last.x},${last.y}`;
  } else {
    for (const p of rest) d += ` L${p.x},${p.y}`;
  }
  return d;
}

function render(data) {
  NC.legend(document.getElementById("legend"), ["running", "success", "failure", "crash", "timeout", "held", "other"]);
  const box = document.getElementById("graph");
  if (data.nodes.length === 0) {
    box.replaceChildren(NC.el("p", {}, "No runs recorded yet."));
    return;
  }
  const g = layout(data);
  const size = g.graph();
  const svg = NC.svg("svg", {
    width: Math.max(size.width, 200),
    height: Math.max(size.height, 100),
    class: "graph-svg",
  });
  svg.append(
    NC.svg(
      "defs",
      {},
      NC.svg("marker", {
        id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
      }, NC.svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))
    )
  );
  const edges = NC.svg("g", { class: "edges" });
  for (const e of g.edges()) {
    const info = g.edge(e);
    const toJoin = g.node(e.w).join !== undefined;
    const line = NC.svg("path", {
      d: path(info.points),
      class: `edge${info.join ? " join-edge" : ""}`,
      "marker-end": toJoin ? null : "url(#arrow)",
      "data-from": e.v.startsWith("join: ") ? g.node(e.v).members.join("+") : e.v,
      "data-to": e.w.startsWith("join: ") ? g.node(e.w).join : e.w,
    });
    if (info.count) {
      line.addEventListener("mousemove", (ev) => NC.tip.show(ev, [`${info.from} → ${info.to}`, `${info.count} launches`]));
      line.addEventListener("mouseleave", () => NC.tip.hide());
    }
    edges.append(line);
  }
  svg.append(edges);
  const nodes = NC.svg("g", { class: "nodes" });
  for (const name of g.nodes()) {
    const n = g.node(name);
    if (n.join !== undefined) {
      const join = NC.svg("circle", { cx: n.x, cy: n.y, r: 5, class: "join", "data-join": n.join, "data-members": n.members.join(",") });
      join.addEventListener("mousemove", (ev) => NC.tip.show(ev, [`race-condition group: ${n.members.join(", ")}`, `all report, then ${n.join} is launched`]));
      join.addEventListener("mouseleave", () => NC.tip.hide());
      nodes.append(join);
      continue;
    }
    const state = data.state[name];
    const cls = n.special ? "special" : state ? (state.held ? "held" : state.class) : "idle";
    const group = NC.svg("a", { href: n.special ? null : `/worker/${encodeURIComponent(name)}` });
    group.append(
      NC.svg("rect", {
        x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height, rx: 6,
        class: `node c-${cls}`, "data-node": name, "data-class": cls,
      }),
      NC.svg("text", { x: n.x, y: n.y + 4, "text-anchor": "middle", class: "node-label", text: name })
    );
    const lines = [name, state ? `today: ${state.class}${state.try > 1 ? ", try " + state.try : ""}` : "not run today"];
    group.addEventListener("mousemove", (ev) => NC.tip.show(ev, lines));
    group.addEventListener("mouseleave", () => NC.tip.hide());
    nodes.append(group);
  }
  svg.append(nodes);
  box.replaceChildren(svg);
}

NC.start(render, "/api/graph.json");
