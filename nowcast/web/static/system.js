// System: the processes, the manager, message rates, what is scheduled next, versions.
"use strict";

function render(data) {
  const procs = data.processes;
  document.getElementById("source").textContent =
    procs.source === "supervisord" ? "(from supervisord)" : "(from this machine's processes)";
  NC.table(
    document.getElementById("processes"),
    ["process", "state", "pid", "since"],
    procs.processes.map((p) => ({
      attrs: { "data-process": p.name, "data-up": p.up ? "yes" : "no" },
      cells: [p.name, NC.chip(p.up ? "success" : "failure", p.up ? "up" : p.state.toLowerCase()), p.pid ?? "–",
        p.since ? `${NC.clock(p.since, true)} (${NC.ago(p.since)})` : "–"],
    }))
  );
  const m = data.manager;
  const fork = m["fork server"];
  NC.table(document.getElementById("manager"), ["", ""], [
    ["answers status requests", NC.chip(m.answering ? "success" : "failure", m.answering ? "yes" : "no")],
    ["pid", m.pid ?? "–"],
    ["fork server", fork ? `${fork.state}${fork.pid ? ", pid " + fork.pid : ""}` : "warm start off"],
    ["workers running", m.running],
    ["checklist file", NC.el("code", {}, m["checklist file"] ?? "–")],
  ]);
  NC.table(
    document.getElementById("rate"),
    ["in the last", "messages", "per minute"],
    Object.entries(data.rate).map(([label, r]) => [label, r.count, r["per minute"].toFixed(2)])
  );
  NC.table(
    document.getElementById("upcoming"),
    ["when", "worker", "args"],
    data.upcoming.map((s) => ({
      attrs: { "data-worker": s.worker },
      cells: [NC.clock(s.at, true, false), NC.workerLink(s.worker), s.args.join(" ") || "–"],
    }))
  );
  NC.table(
    document.getElementById("versions"),
    ["", ""],
    [...Object.entries(data.versions), ["host", data.host]]
  );
}

NC.start(render, "/api/system.json");
