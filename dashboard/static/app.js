// dynago dashboard. Plain ES module, no dependencies. Every request goes to
// a relative api/... URL so the page works both from `dynago dev` and
// under a node's /dashboard/. Nothing here may throw to the console:
// every fetch goes through api(), which never rejects, and failures are
// shown in #errors.

const $ = (sel, root = document) => root.querySelector(sel);

// h builds an element; strings become text nodes (never HTML), so keys
// and values typed by users cannot inject markup.
function h(tag, attrs = {}, ...kids) {
  const ns = attrs.svg ? "http://www.w3.org/2000/svg" : null;
  const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "svg" || v === undefined || v === null || v === false) continue;
    if (k === "class") el.setAttribute("class", v);
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k.startsWith("data-")) el.setAttribute(k, v);
    else if (ns) el.setAttribute(k, v);
    else if (k in el) el[k] = v;
    else el.setAttribute(k, v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

// ---------- errors ----------
function showError(msg) {
  const box = $("#errors");
  if (!box) return;
  const item = h("div", { class: "error" }, h("span", { text: String(msg) }),
    h("button", { type: "button", text: "dismiss", onclick: () => item.remove() }));
  box.append(item);
  while (box.children.length > 5) box.firstChild.remove();
}
window.addEventListener("unhandledrejection", (e) => { e.preventDefault(); showError("unexpected: " + (e.reason && e.reason.message || e.reason)); });
window.addEventListener("error", (e) => { e.preventDefault(); showError("unexpected: " + e.message); });

// api fetches a relative URL and never rejects: {ok, status, json, text,
// headers, ms, error}. status 0 means the request did not complete.
async function api(path, opts = {}) {
  const t0 = performance.now();
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), opts.timeout || 70000);
  try {
    const resp = await fetch(path, { ...opts, signal: ctrl.signal });
    const text = await resp.text();
    let json = null;
    if ((resp.headers.get("Content-Type") || "").includes("json") && text) {
      try { json = JSON.parse(text); } catch { json = null; }
    }
    return { ok: resp.ok, status: resp.status, json, text, headers: resp.headers, ms: performance.now() - t0 };
  } catch (err) {
    return { ok: false, status: 0, json: null, text: "", headers: new Headers(), ms: performance.now() - t0, error: String(err && err.message || err) };
  } finally {
    clearTimeout(timer);
  }
}
const nodeURL = (id, path) => `api/node/${encodeURIComponent(id)}${path}`;
const kvPath = (key) => "/kv/" + encodeURIComponent(key);
const describe = (r) => r.status === 0 ? `no answer (${r.error})` : `${r.status}${r.json && r.json.error ? " " + r.json.error : ""}`;

// ---------- state ----------
const state = {
  config: null,
  ids: [],                // every node ID known, in order
  ref: null,              // the node whose /cluster we read
  cluster: null,          // last /cluster answer
  ring: null,             // last /ring answer
  procs: {},              // dev mode: api/nodes by ID
  stats: {},              // /admin/stats by ID (null = unavailable)
  statsMissing: false,    // /admin/stats answered 404 (endpoint not there)
  lastKey: null,
  highlightOwner: null,
  placement: null,
};

// Okabe–Ito then Paul Tol "muted": colour-blind-safe, 17 distinguishable
// colours before repeating; the legend and tooltips name the node anyway.
const PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
  "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499", "#555555"];
function colour(id) {
  const i = state.ids.indexOf(id);
  return i < 0 ? "#bbbbbb" : PALETTE[i % PALETTE.length];
}
const byNodeOrder = (a, b) => {
  const na = parseInt(String(a).replace(/\D+/g, ""), 10), nb = parseInt(String(b).replace(/\D+/g, ""), 10);
  return (isNaN(na) || isNaN(nb) || na === nb) ? String(a).localeCompare(String(b)) : na - nb;
};
function addIDs(list) {
  let changed = false;
  for (const id of list) if (id && !state.ids.includes(id)) { state.ids.push(id); changed = true; }
  if (changed) { state.ids.sort(byNodeOrder); refreshNodeSelects(); }
}
const statusOf = (id) => {
  const n = state.cluster && state.cluster.nodes.find((x) => x.id === id);
  if (n) return n.status;
  return id === state.ref ? "alive" : "unknown";
};
const aliveIDs = () => state.ids.filter((id) => statusOf(id) === "alive");

// ---------- cluster polling ----------
async function pollCluster() {
  const order = state.ref ? [state.ref, ...state.ids.filter((i) => i !== state.ref)] : state.ids;
  for (const id of order) {
    const r = await api(nodeURL(id, "/cluster"), { timeout: 2000 });
    if (r.ok && r.json) {
      state.ref = id;
      state.cluster = r.json;
      addIDs((r.json.nodes || []).map((n) => n.id));
      renderNodes();
      renderHandoff();
      if (!state.ring || state.ring.version !== r.json.ring_version) await loadRing();
      return;
    }
  }
  state.cluster = null;
  renderNodes();
}

async function pollProcs() {
  if (!state.config || !state.config.control) return;
  const r = await api("api/nodes", { timeout: 3000 });
  if (!r.ok || !Array.isArray(r.json)) return;
  for (const p of r.json) state.procs[p.id] = p;
  addIDs(r.json.map((p) => p.id));
}

async function pollStats() {
  // Every member the page knows, not only those the reference node sees
  // alive: across a partition the page still reaches the cut-off side,
  // which answers with its own view, so the gossip matrix shows both
  // sides. A node that does not answer loses its row (no stale view).
  await Promise.all(state.ids.map(async (id) => {
    const alive = statusOf(id) === "alive";
    const r = await api(nodeURL(id, "/admin/stats"), { timeout: alive ? 3000 : 1000 });
    if (r.status === 404 && !(r.json && r.json.node)) { state.statsMissing = true; state.stats[id] = null; return; }
    if (r.ok && r.json) { state.statsMissing = false; state.stats[id] = r.json; return; }
    if (!alive) delete state.stats[id];
  }));
  renderNodes();
  renderGossip();
  renderAE();
}

// ---------- nodes ----------
function nodeRow(id) {
  const tbody = $("#nodes tbody");
  let tr = tbody.querySelector(`tr[data-node="${CSS.escape(id)}"]`);
  if (tr) return tr;
  const act = (label, cls, fn) => h("button", { type: "button", class: cls, text: label, "aria-label": `${label} ${id}`, onclick: (e) => fn(e.currentTarget) });
  const lat = h("input", { type: "text", class: "latency", placeholder: "e.g. 20ms", size: 9, "aria-label": `latency from ${id} to every node` });
  tr = h("tr", { "data-node": id },
    h("th", { scope: "row" }, h("span", { class: "swatch", style: `background:${colour(id)}` }), id),
    h("td", { class: "status", text: "unknown" }),
    h("td", { class: "addr mono" }),
    h("td", { class: "partitions" }),
    h("td", { class: "keys" }),
    h("td", { class: "hints" }),
    h("td", { class: "ae" }),
    h("td", {}, h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); setLatency(id, lat.value.trim()); } },
      lat, h("button", { type: "submit", text: "set", "aria-label": `set latency of ${id}` }))),
    h("td", {}, act("cut off", "cut", (b) => cutOff(id, b)), " ", act("heal", "heal", (b) => heal(id, b))),
    h("td", { class: "control" }, h("span", { class: "proc muted" }), " ",
      act("kill", "kill danger", (b) => control(id, "kill", b)), " ",
      act("restart", "restart", (b) => control(id, "restart", b)), " ",
      act("wipe", "wipe danger", (b) => control(id, "wipe", b))));
  const rows = [...tbody.children];
  const after = rows.find((r) => byNodeOrder(r.dataset.node, id) > 0);
  tbody.insertBefore(tr, after || null);
  return tr;
}

function renderNodes() {
  for (const id of state.ids) {
    const tr = nodeRow(id);
    const n = state.cluster && state.cluster.nodes.find((x) => x.id === id);
    const st = statusOf(id);
    const td = tr.querySelector("td.status");
    if (td.textContent !== st) { td.textContent = st; td.className = "status " + st; }
    tr.querySelector("td.addr").textContent = n ? n.http_addr : (state.procs[id] ? state.procs[id].http_addr : "");
    tr.querySelector("td.partitions").textContent = n ? String(n.partitions) + (n.next_partitions !== undefined && n.next_partitions !== n.partitions ? ` → ${n.next_partitions}` : "") : "";
    const s = state.stats[id];
    const na = state.statsMissing ? "n/a" : "";
    tr.querySelector("td.keys").textContent = s ? `≈${s.keys}` : na;
    tr.querySelector("td.hints").textContent = s ? formatHints(s.hints) : na;
    tr.querySelector("td.ae").textContent = s && s.ae ? `${s.ae.exchanges} (${s.ae.in_sync} equal, ${s.ae.keys_repaired} repaired)` : na;
    const p = state.procs[id];
    tr.querySelector(".proc").textContent = p ? (p.running ? `pid ${p.pid}` : "stopped") : "";
  }
}
function formatHints(hints) {
  const parts = Object.entries(hints || {}).filter(([, c]) => c > 0).map(([k, c]) => `${k}: ${c}`);
  return parts.length ? parts.join(", ") : "0";
}

async function busy(btn, fn) {
  if (btn) btn.disabled = true;
  try { return await fn(); } finally { if (btn) btn.disabled = false; }
}
async function control(id, what, btn) {
  await busy(btn, async () => {
    const r = await api(`api/nodes/${encodeURIComponent(id)}/${what}`, { method: "POST" });
    if (!r.ok) showError(`${what} ${id}: ${describe(r)}`);
    await pollProcs();
    await pollCluster();
  });
}

async function getFaults(id) {
  const r = await api(nodeURL(id, "/admin/faults"), { timeout: 3000 });
  if (!r.ok || !r.json) throw new Error(`faults of ${id}: ${describe(r)}`);
  const rules = r.json.rules || {};
  return { delay: rules.delay || {}, loss: rules.loss || {}, cut: rules.cut || [] };
}
async function putFaults(id, rules) {
  const r = await api(nodeURL(id, "/admin/faults"), { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(rules), timeout: 3000 });
  if (!r.ok) throw new Error(`set faults of ${id}: ${describe(r)}`);
}
// editFaults applies edit to the rules of each node; errors are shown
// per node so one dead node does not stop the others.
async function editFaults(ids, edit) {
  await Promise.all(ids.map(async (id) => {
    try { const rules = await getFaults(id); edit(id, rules); await putFaults(id, rules); } catch (err) { showError(err.message); }
  }));
}
// A cut needs rules on both sides: faults act on what a node sends.
async function cutOff(id, btn) {
  await busy(btn, () => editFaults(state.ids.filter((x) => statusOf(x) !== "dead" || x === id), (x, rules) => {
    const want = x === id ? "*" : id;
    if (!rules.cut.includes(want)) rules.cut.push(want);
  }));
}
async function heal(id, btn) {
  await busy(btn, () => editFaults(state.ids.filter((x) => statusOf(x) !== "dead" || x === id), (x, rules) => {
    rules.cut = rules.cut.filter((c) => c !== (x === id ? "*" : id));
  }));
}
// cutBetween cuts (or with heal, restores) the links between id and each
// of others, in both directions.
async function cutBetween(id, others, healing, btn) {
  if (!id || !others.length) { showError("network: choose a node and at least one other"); return; }
  await busy(btn, () => editFaults([id, ...others], (x, rules) => {
    const peers = x === id ? others : [id];
    if (healing) rules.cut = rules.cut.filter((c) => !peers.includes(c));
    else for (const p of peers) if (!rules.cut.includes(p)) rules.cut.push(p);
  }));
}
function renderCutOthers() {
  const id = $("#cut-node").value;
  const box = $("#cut-others");
  const checked = new Set([...box.querySelectorAll("input:checked")].map((x) => x.value));
  box.replaceChildren(...state.ids.filter((x) => x !== id).map((x) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", value: x, checked: checked.has(x) }), ` ${x}`)));
}
async function setLatency(id, spec) {
  await editFaults([id], (x, rules) => { if (spec) rules.delay["*"] = spec; else delete rules.delay["*"]; });
}

// ---------- join / leave ----------
function refreshNodeSelects() {
  for (const sel of [$("#leave-node"), $("#console-via"), $("#ae-node"), $("#cut-node")]) {
    if (!sel) continue;
    const cur = sel.value;
    sel.replaceChildren(...state.ids.map((id) => h("option", { value: id, text: id })));
    if (cur && state.ids.includes(cur)) sel.value = cur;
  }
  renderCutOthers();
}
function renderPlan(plan, note) {
  const pre = $("#plan");
  if (!plan) { pre.textContent = note; return; }
  const lines = [];
  if (note) lines.push(note);
  lines.push(`ring version ${plan.ring_version}${plan.committed ? " — committed" : " — staged, not committed"}`);
  lines.push(`joining: ${(plan.joining || []).join(", ") || "none"}   leaving: ${(plan.leaving || []).join(", ") || "none"}`);
  lines.push(`${(plan.moves || []).length} partitions change owner; ${(plan.transfers || []).length} transfers`);
  const before = plan.partitions_before || {}, after = plan.partitions_after || {};
  const ids = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort(byNodeOrder);
  for (const id of ids) lines.push(`  ${id.padEnd(5)} ${String(before[id] ?? 0).padStart(4)} → ${String(after[id] ?? 0).padStart(4)}`);
  pre.textContent = lines.join("\n");
}
async function planAction(method, path, label, btn) {
  await busy(btn, async () => {
    if (!state.ref) { showError("no node reachable"); return; }
    const r = await api(nodeURL(state.ref, path), { method });
    if (r.status === 404 && path === "/admin/plan") { renderPlan(null, "plan: not available"); return; }
    if (!r.ok) { renderPlan(r.json && r.json.ring_version !== undefined ? r.json : null, `${label}: ${describe(r)}`); return; }
    renderPlan(r.json, label);
  });
}

// ---------- ring ----------
async function loadRing() {
  if (!state.ref) return;
  const r = await api(nodeURL(state.ref, "/ring"), { timeout: 3000 });
  if (!r.ok || !r.json || !Array.isArray(r.json.owners)) { $("#ring-summary").textContent = "ring: not available"; return; }
  state.ring = r.json;
  addIDs(r.json.owners);
  drawRing();
}
function arc(p, q, r0, r1) {
  const a0 = (2 * Math.PI * p) / q - Math.PI / 2, a1 = (2 * Math.PI * (p + 1)) / q - Math.PI / 2;
  const pt = (r, a) => `${(r * Math.cos(a)).toFixed(2)} ${(r * Math.sin(a)).toFixed(2)}`;
  const large = a1 - a0 > Math.PI ? 1 : 0;
  return `M${pt(r1, a0)}A${r1} ${r1} 0 ${large} 1 ${pt(r1, a1)}L${pt(r0, a1)}A${r0} ${r0} 0 ${large} 0 ${pt(r0, a0)}Z`;
}
function drawRing() {
  const ring = state.ring;
  if (!ring) return;
  const q = ring.owners.length;
  const svg = $("#ring");
  const kids = ring.owners.map((owner, p) => h("path", { svg: true, class: "partition", d: arc(p, q, 140, 200), fill: colour(owner), "data-owner": owner, "data-partition": p },
    h("title", { svg: true, text: `partition ${p}: ${owner}` })));
  kids.push(h("text", { svg: true, class: "marker", x: 0, y: -4, "text-anchor": "middle", text: `${q} partitions` }));
  kids.push(h("text", { svg: true, class: "marker", x: 0, y: 14, "text-anchor": "middle", text: `ring v${ring.version}, N=${ring.n}` }));
  // A marker outside the ring points at the highlighted key's partition:
  // with 1,024 partitions a segment is a third of a degree wide.
  kids.push(h("g", { svg: true, id: "key-marker", class: "hidden" },
    h("line", { svg: true, x1: 0, y1: -128, x2: 0, y2: -208 }), h("circle", { svg: true, cx: 0, cy: -206, r: 4 })));
  svg.replaceChildren(...kids);
  // Thin white borders separate partitions; past a few hundred they
  // would be most of what is drawn.
  svg.classList.toggle("dense", q > 256);
  const counts = {};
  for (const o of ring.owners) counts[o] = (counts[o] || 0) + 1;
  $("#ring-legend").replaceChildren(...Object.keys(counts).sort(byNodeOrder).map((id) => h("li", { "data-node": id },
    h("button", { type: "button", class: "legend-node", "aria-pressed": String(state.highlightOwner === id), onclick: () => { state.highlightOwner = state.highlightOwner === id ? null : id; drawRing(); } },
      h("span", { class: "swatch", style: `background:${colour(id)}` }), `${id} — ${counts[id]} partitions`))));
  $("#ring-summary").textContent = `${q} partitions, ${Object.keys(counts).length} owners, N=${ring.n}, hash ${ring.hash}`;
  applyHighlight();
}
function applyHighlight() {
  const svg = $("#ring");
  const paths = svg.querySelectorAll("path.partition");
  const pl = state.placement;
  const pref = new Set();
  if (pl && state.ring) {
    // The preference list is the owners of the key's partition and the
    // following ones, skipping repeated nodes: mark those partitions.
    const seen = new Set(), q = state.ring.owners.length;
    for (let i = 0; i < q && seen.size < (pl.preference_list || []).length; i++) {
      const p = (pl.partition + i) % q, o = state.ring.owners[p];
      if (!seen.has(o)) { seen.add(o); pref.add(p); }
    }
  }
  // The legend names each node's role for the key: its place in the
  // preference list, or in the order fallbacks are taken.
  document.querySelectorAll("#ring-legend li[data-node]").forEach((li) => {
    const id = li.dataset.node;
    let role = "";
    if (pl) {
      const i = (pl.preference_list || []).indexOf(id), f = (pl.fallbacks || []).indexOf(id);
      role = i >= 0 ? `replica ${i + 1}` : f >= 0 ? `fallback ${f + 1}` : "";
    }
    let badge = li.querySelector(".role");
    if (!badge) { badge = h("span", { class: "role" }); li.append(badge); }
    badge.textContent = role;
    badge.className = `role ${role.startsWith("replica") ? "role-pref" : role ? "role-fallback" : ""}`;
  });
  const marker = $("#key-marker");
  if (marker && pl && state.ring) {
    const deg = (360 * (pl.partition + 0.5)) / state.ring.owners.length;
    marker.setAttribute("transform", `rotate(${deg.toFixed(2)})`);
    marker.classList.remove("hidden");
  } else if (marker) marker.classList.add("hidden");
  const pending = new Set(((state.cluster && state.cluster.handoff && state.cluster.handoff.pending) || []).map((x) => x.partition));
  paths.forEach((el) => {
    const p = Number(el.dataset.partition);
    el.classList.toggle("key", !!pl && p === pl.partition);
    el.classList.toggle("pref", pref.has(p));
    el.classList.toggle("moving", pending.has(p));
    const dim = (state.highlightOwner && el.dataset.owner !== state.highlightOwner) || (pl && !pref.has(p));
    el.classList.toggle("dim", !!dim);
  });
}
let ringKeyTimer = 0;
function onRingKey() {
  clearTimeout(ringKeyTimer);
  ringKeyTimer = setTimeout(async () => {
    const key = $("#ring-key").value;
    const out = $("#ring-placement");
    if (!key || !state.ref) { state.placement = null; out.textContent = ""; applyHighlight(); return; }
    const r = await api(nodeURL(state.ref, kvPath(key) + "/placement"), { timeout: 3000 });
    if (!r.ok || !r.json) { out.textContent = `placement: ${describe(r)}`; return; }
    if ($("#ring-key").value !== key) return;
    state.placement = r.json;
    out.textContent = `partition ${r.json.partition} · preference list ${r.json.preference_list.join(", ")} · fallbacks ${(r.json.fallbacks || []).join(", ") || "none"}`;
    applyHighlight();
  }, 200);
}
function renderHandoff() {
  const ho = state.cluster && state.cluster.handoff;
  const box = $("#handoff");
  if (!ho || !ho.in_progress) { box.replaceChildren(); applyHighlight(); return; }
  box.replaceChildren(h("p", {}, `Handoff in progress (claimant ${ho.claimant}): ${ho.done} of ${ho.total} done.`),
    h("ul", { class: "mono" }, (ho.pending || []).slice(0, 20).map((m) => h("li", { text: `partition ${m.partition}: ${m.from} → ${m.to}` }))));
  applyHighlight();
}

// ---------- console ----------
const decoder = new TextDecoder();
function b64text(b) {
  try { return decoder.decode(Uint8Array.from(atob(b), (c) => c.charCodeAt(0))); } catch { return String(b); }
}
function viaNode() {
  const v = $("#console-via").value;
  if (v && statusOf(v) !== "dead") return v;
  return aliveIDs()[0] || state.ref || state.ids[0];
}
async function sendConsole(op, key, value, context) {
  const via = viaNode();
  if (!via) { showError("no node to send to"); return null; }
  const q = new URLSearchParams({ trace: "1" });
  const rv = $("#console-r").value, wv = $("#console-w").value;
  if (op === "get" && rv) q.set("r", rv);
  if (op !== "get" && wv) q.set("w", wv);
  const headers = {};
  if (context) headers["X-Dynago-Context"] = context;
  if (op === "get") headers["Accept"] = "application/json";
  const opts = { method: op.toUpperCase(), headers };
  if (op === "put") opts.body = value;
  const r = await api(nodeURL(via, kvPath(key) + "?" + q), opts);
  r.via = via;
  return r;
}
function resultView(op, key, r, prefix) {
  const body = r.json || {};
  const ctx = body.context || r.headers.get("X-Dynago-Context") || "";
  const line = h("p", { class: "result-status" }, prefix || "", `${op.toUpperCase()} ${key} via ${r.via} → `,
    h("strong", { text: r.status === 0 ? "no answer" : String(r.status) }), ` in ${r.ms.toFixed(1)} ms`,
    body.error ? ` — ${body.code}: ${body.error}` : "",
    body.acks !== undefined ? ` (acks ${body.acks} of ${body.required})` : "");
  const kids = [line];
  if (ctx) kids.push(h("p", { class: "muted mono" }, "context ", h("span", { class: "context", text: ctx })));
  if (op === "get" && Array.isArray(body.siblings)) {
    kids.push(h("p", {}, body.siblings.length > 1 ? `${body.siblings.length} siblings (concurrent values): pick one to resolve them` : "value:"));
    kids.push(h("ul", { class: "siblings" }, body.siblings.map((b) => {
      const v = b64text(b);
      return h("li", { class: "sibling" }, h("span", { class: "val", text: v }),
        body.siblings.length > 1 ? h("button", { type: "button", class: "resolve", text: "resolve with this", onclick: (e) => resolve(key, v, ctx, e.currentTarget) }) : null);
    })));
  }
  return kids;
}
function renderTrace(trace) {
  const ol = $("#trace");
  if (!trace) { ol.replaceChildren(h("li", { class: "na", text: "no trace in the answer" })); return; }
  const max = Math.max(1, ...trace.events.map((e) => e.at_ms));
  const head = h("li", { class: "trace-head" }, h("span", { text: "coordinator" }), h("span", { text: trace.coordinator }),
    h("span", { text: `partition ${trace.partition}` }), h("span", { text: `preference list ${trace.preference_list.join(", ")}${trace.forwarded_by ? ` · forwarded by ${trace.forwarded_by}` : ""}` }));
  ol.replaceChildren(head, ...trace.events.map((e) => h("li", { class: `trace-event w-${e.what}`, "data-what": e.what, "data-node": e.node },
    h("span", { text: `+${e.at_ms.toFixed(2)} ms` }), h("span", { text: e.node }), h("strong", { text: e.what }),
    h("span", {}, e.note || "", h("div", { class: "bar", style: `width:${Math.max(1, (100 * e.at_ms) / max)}%` })))));
}
async function runConsole() {
  const op = $("#console-op").value, key = $("#console-key").value, value = $("#console-value").value;
  if (!key) { showError("console: type a key"); return; }
  const r = await busy($("#console-send"), () => sendConsole(op, key, value, ""));
  if (!r) return;
  $("#console-result").replaceChildren(...resultView(op, key, r));
  renderTrace(r.json && r.json.trace);
  state.lastKey = key;
  await renderLocal(key);
}
// resolve writes the chosen sibling with the read's context, which
// supersedes every sibling that read returned, then reads the key back.
async function resolve(key, value, ctx, btn) {
  state.lastKey = key;
  const w = await busy(btn, () => sendConsole("put", key, value, ctx));
  if (!w) return;
  renderTrace(w.json && w.json.trace);
  const kids = resultView("put", key, w, "resolve: ");
  if (w.ok) {
    const g = await sendConsole("get", key, "", "");
    if (g) kids.push(...resultView("get", key, g, "read back: "));
  }
  $("#console-result").replaceChildren(...kids);
  await renderLocal(key);
}
async function renderLocal(key) {
  const tbody = $("#console-local tbody");
  const rows = await Promise.all(state.ids.map(async (id) => {
    if (statusOf(id) === "dead") return h("tr", { "data-node": id }, h("th", { scope: "row", text: id }), h("td", { class: "na", text: "node down" }), h("td"), h("td", { class: "hints" }));
    // /admin/history answers 200 with held:false for a key the node does
    // not hold, so asking every node leaves no failed requests behind.
    const r = await api(nodeURL(id, "/admin/history/" + encodeURIComponent(key)), { timeout: 3000 });
    if (!r.ok || !r.json || !r.json.held) {
      return h("tr", { "data-node": id }, h("th", { scope: "row", text: id }), h("td", { class: "na", text: r.ok ? "nothing" : describe(r) }), h("td"), h("td", { class: "hints" }));
    }
    const sibs = (r.json.siblings || []).map((s) => s.deleted ? "(tombstone)" : b64text(s.value));
    const clock = (r.json.clock || []).map((c) => `${c.actor}:${c.counter}`).join(", ");
    return h("tr", { "data-node": id }, h("th", { scope: "row", text: id }), h("td", { class: "mono", text: sibs.join(" | ") || "—" }),
      h("td", { class: "mono muted", text: clock.slice(0, 40) }),
      h("td", { class: "hints", text: (r.json.hints || []).map((x) => x.for).join(", ") }));
  }));
  if (state.lastKey === key) tbody.replaceChildren(...rows);
}

// ---------- key history ----------
async function showHistory() {
  const key = $("#history-key").value;
  const out = $("#history");
  if (!key || !state.ref) return;
  const pl = await api(nodeURL(state.ref, kvPath(key) + "/placement"), { timeout: 3000 });
  const ids = pl.ok && pl.json ? [...pl.json.preference_list, ...(pl.json.fallbacks || [])] : state.ids;
  const pref = new Set(pl.ok && pl.json ? pl.json.preference_list : []);
  const results = await Promise.all(ids.map(async (id) => [id, await api(nodeURL(id, "/admin/history/" + encodeURIComponent(key)), { timeout: 3000 })]));
  if (results.every(([, r]) => r.status === 404)) { out.replaceChildren(h("p", { class: "na", text: "key history: not available on these nodes" })); return; }
  // versions: dot → which node holds it, as a replica or in a hint.
  const versions = new Map();
  const cards = [];
  for (const [id, r] of results) {
    if (!r.ok || !r.json || !r.json.held) {
      if (pref.has(id)) cards.push(h("div", { class: "history-node", "data-node": id }, h("strong", { text: id }), " (preference list): ", h("span", { class: "na", text: r.ok ? "holds nothing" : describe(r) })));
      continue;
    }
    const hist = r.json;
    const dotName = (d) => d ? `${d.actor}:${d.counter}` : "?";
    const note = (s, where) => {
      const k = dotName(s.dot);
      if (!versions.has(k)) versions.set(k, { value: s.deleted ? "(tombstone)" : b64text(s.value), holders: {} });
      versions.get(k).holders[id] = where;
    };
    (hist.siblings || []).forEach((s) => note(s, "replica"));
    (hist.hints || []).forEach((hh) => (hh.siblings || []).forEach((s) => note(s, `hint for ${hh.for}`)));
    cards.push(h("div", { class: "history-node", "data-node": id },
      h("p", {}, h("strong", { text: id }), pref.has(id) ? " (preference list)" : " (fallback)", ` · partition ${hist.partition} · clock `,
        h("span", { class: "dot", text: (hist.clock || []).map((c) => `${c.actor}:${c.counter}`).join(", ") || "empty" })),
      h("ul", {}, (hist.siblings || []).map((s) => h("li", {}, h("span", { class: "dot", text: dotName(s.dot) }), " ",
        s.deleted ? "tombstone" : b64text(s.value), s.timestamp ? ` · ${new Date(s.timestamp).toISOString()}` : ""))),
      (hist.hints || []).length ? h("p", { class: "muted" }, "hints held: ", hist.hints.map((x) => `for ${x.for} (${(x.siblings || []).length} siblings)`).join("; ")) : null));
  }
  const cols = results.map(([id]) => id);
  const table = h("table", { class: "versions" },
    h("thead", {}, h("tr", {}, h("th", { text: "version (dot)" }), h("th", { text: "value" }), cols.map((id) => h("th", { text: id })))),
    h("tbody", {}, [...versions].map(([dot, v]) => h("tr", {}, h("td", { class: "mono", text: dot }), h("td", { text: v.value }),
      cols.map((id) => h("td", { text: v.holders[id] || "" }))))));
  out.replaceChildren(h("h3", { text: "Which replica holds which version" }), versions.size ? table : h("p", { class: "na", text: "no node holds this key" }), ...cards);
}

// ---------- gossip & anti-entropy ----------
function renderGossip() {
  const t = $("#gossip");
  // The matrix grows with the square of the cluster: past eight nodes
  // it gets the page's whole width.
  $("#view-gossip").classList.toggle("wide", state.ids.length > 8);
  const have = state.ids.filter((id) => state.stats[id]);
  if (!have.length) { t.replaceChildren(h("tbody", {}, h("tr", {}, h("td", { class: "na", text: state.statsMissing ? "not available (no /admin/stats)" : "waiting for /admin/stats" })))); return; }
  t.replaceChildren(
    h("thead", {}, h("tr", {}, h("th", { text: "sees →" }), state.ids.map((id) => h("th", { text: id })), h("th", { text: "ring" }))),
    h("tbody", {}, have.map((obs) => {
      const view = {};
      for (const g of state.stats[obs].gossip || []) view[g.id] = g.status;
      return h("tr", { "data-node": obs }, h("th", { scope: "row", text: obs }),
        state.ids.map((id) => h("td", { class: `st-${view[id] || "none"}`, title: `${obs} sees ${id} as ${view[id] || "unknown"}`, text: view[id] ? view[id][0].toUpperCase() : "·" })),
        h("td", { text: `v${state.stats[obs].ring_version}` }));
    })));
}
function renderAE() {
  const id = $("#ae-node").value || state.ref;
  const s = id && state.stats[id];
  const tbody = $("#ae tbody");
  if (!s) { $("#ae-summary").textContent = state.statsMissing ? "not available (no /admin/stats)" : "waiting for /admin/stats"; tbody.replaceChildren(); return; }
  const ae = s.ae || {};
  $("#ae-summary").textContent = `${id}: ${ae.exchanges} exchanges, ${ae.in_sync} found equal roots, ${ae.keys_repaired} keys repaired, ${ae.tree_builds} trees built`;
  // One row per partition and replica pair: what this node last found
  // when it compared trees with the peer, and the objects each side sent
  // the other (the peer's count comes from the peer's own stats).
  const sentBy = (from, p, to) => {
    const ps = state.stats[from] && (state.stats[from].partitions || []).find((x) => x.partition === p);
    const pair = ps && (ps.pairs || []).find((x) => x.peer === to);
    return pair ? pair.keys_sent : null;
  };
  const rows = [];
  for (const p of s.partitions || []) {
    const pairs = p.pairs || [];
    if (!pairs.length) {
      const le = p.last_exchange;
      rows.push(h("tr", {}, h("td", { text: p.partition }), h("td", { text: (p.replicas || []).join(", ") }),
        h("td", { text: le ? le.peer : "never" }), h("td", { text: le ? new Date(le.at).toLocaleTimeString() : "" }),
        h("td", { text: le ? (le.in_sync ? "yes" : "no → repaired") : "" }), h("td"), h("td")));
      continue;
    }
    pairs.forEach((pair, i) => {
      const le = pair.last_exchange;
      const got = sentBy(pair.peer, p.partition, id);
      rows.push(h("tr", { "data-partition": p.partition, "data-peer": pair.peer, class: i ? "cont" : "" },
        h("td", { text: i ? "" : p.partition }), h("td", { text: i ? "" : (p.replicas || []).join(", ") }),
        h("td", { text: pair.peer }),
        h("td", { text: le ? new Date(le.at).toLocaleTimeString() : "not yet" }),
        h("td", { class: le ? (le.in_sync ? "st-alive" : "st-suspect") : "na", text: le ? (le.in_sync ? "equal" : "differed → repaired") : "" }),
        h("td", { class: "num", text: pair.keys_sent }),
        h("td", { class: "num", text: got === null ? "?" : got })));
    });
  }
  tbody.replaceChildren(...rows);
}

// ---------- events ----------
const KINDS = ["member", "ring", "hint_stored", "hint_delivered", "ae_exchange", "repair", "handoff", "request", "fault", "message"];
// One EventSource for the whole cluster: api/events merges every node's
// /events server-side (browsers allow only six connections per host, so a
// stream per node would starve the page's other requests). "upstream"
// frames say which nodes' streams are open.
const upstream = new Set();
const seenEvents = new Set();
let source = null;
let sourceRetryAt = 0;
function setStatus() {
  const open = !!source && source.readyState === EventSource.OPEN && upstream.size > 0;
  const el = $("#status");
  el.textContent = open ? "connected" : (source && source.readyState === EventSource.OPEN ? "no node stream open" : "disconnected");
  el.classList.toggle("connected", open);
  el.title = open ? `streams open: ${[...upstream].sort(byNodeOrder).join(", ")}` : "";
}
function connectEvents() {
  if (source && source.readyState !== EventSource.CLOSED) return;
  if (Date.now() < sourceRetryAt) return;
  upstream.clear();
  try { source = new EventSource("api/events"); } catch (err) { showError(`events: ${err.message}`); return; }
  const es = source;
  es.onopen = setStatus;
  // EventSource reconnects by itself after a dropped stream, but gives up
  // for good on an error answer: then the poll loop reopens it later.
  es.onerror = () => { upstream.clear(); if (es.readyState === EventSource.CLOSED) sourceRetryAt = Date.now() + 3000; setStatus(); };
  es.addEventListener("upstream", (e) => {
    try { const u = JSON.parse(e.data); if (u.open) upstream.add(u.node); else upstream.delete(u.node); } catch { /* ignore a malformed frame */ }
    setStatus();
  });
  for (const k of KINDS) es.addEventListener(k, (e) => onEvent("", e));
  setStatus();
}
function onEvent(id, e) {
  let ev;
  try { ev = JSON.parse(e.data); } catch { return; }
  // A reopened stream replays recent events; node+seq+time identifies one.
  const uid = `${ev.node || id}:${ev.seq}:${ev.at}`;
  if (seenEvents.has(uid)) return;
  seenEvents.add(uid);
  // Duplicates only arrive shortly after a stream reconnects, so the IDs
  // of the last few thousand events are enough; keeping every one would
  // grow without bound in a tab left open (every request is an event).
  if (seenEvents.size > 5000) {
    const drop = seenEvents.size - 4000;
    let i = 0;
    for (const old of seenEvents) { if (i++ >= drop) break; seenEvents.delete(old); }
  }
  const at = ev.at ? new Date(ev.at) : new Date();
  const li = h("li", { class: "event", "data-kind": ev.kind || e.type, "data-node": ev.node || id },
    h("span", { class: "muted", text: at.toLocaleTimeString([], { hour12: false }) + "." + String(at.getMilliseconds()).padStart(3, "0") }),
    h("span", { text: ev.node || id }), h("span", { class: "kind", text: ev.kind || e.type }), h("span", { text: ev.msg || JSON.stringify(ev.data || {}) }));
  li.title = JSON.stringify(ev.data || {});
  applyFilter(li);
  const list = $("#events");
  list.prepend(li);
  while (list.children.length > 600) list.lastChild.remove();
  if (ev.kind === "member" || ev.kind === "ring") setTimeout(pollCluster, 0);
}
function applyFilter(li) {
  const f = $("#events-filter").value.trim().toLowerCase();
  li.classList.toggle("filtered", !!f && !li.textContent.toLowerCase().includes(f));
}

// ---------- experiments ----------
async function runBench() {
  const ops = Math.max(10, Math.min(5000, Number($("#bench-ops").value) || 200));
  const reads = Number($("#bench-mix").value) / 100;
  const conc = Math.max(1, Math.min(32, Number($("#bench-conc").value) || 4));
  const lat = { get: [], put: [] };
  let failed = 0, next = 0;
  const targets = aliveIDs();
  if (!targets.length) { showError("bench: no alive node"); return; }
  $("#bench-summary").textContent = "running…";
  const t0 = performance.now();
  const worker = async (w) => {
    while (next < ops) {
      const i = next++;
      const op = Math.random() < reads ? "get" : "put";
      const key = `bench-${i % 100}`;
      const via = targets[(i + w) % targets.length];
      const r = await api(nodeURL(via, kvPath(key)), op === "put" ? { method: "PUT", body: `v${i}` } : { headers: { Accept: "application/json" } });
      if (r.ok || r.status === 404) lat[op].push(r.ms); else failed++;
    }
  };
  await busy($("#bench-run"), () => Promise.all(Array.from({ length: conc }, (_, w) => worker(w))));
  const secs = (performance.now() - t0) / 1000;
  const q = (a, p) => { if (!a.length) return 0; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
  const fmt = (op) => lat[op].length ? `${op}: ${lat[op].length} ops, p50 ${q(lat[op], 0.5).toFixed(1)} ms, p99 ${q(lat[op], 0.99).toFixed(1)} ms, max ${q(lat[op], 1).toFixed(1)} ms` : "";
  $("#bench-summary").textContent = [`${(ops / secs).toFixed(0)} ops/s over ${secs.toFixed(1)} s, ${failed} failed`, fmt("get"), fmt("put")].filter(Boolean).join(" · ");
  drawBench(lat);
}
function drawBench(lat) {
  // Log-scale latency buckets from 0.25 ms doubling; bars per op side by side.
  const edges = Array.from({ length: 14 }, (_, i) => 0.25 * 2 ** i);
  const count = (a) => edges.map((e, i) => a.filter((x) => x >= (i ? edges[i - 1] : 0) && (x < e || i === edges.length - 1)).length);
  const g = count(lat.get), p = count(lat.put);
  const max = Math.max(1, ...g, ...p);
  const W = 640, H = 220, L = 40, B = 30, bw = (W - L - 10) / edges.length;
  const kids = [h("line", { svg: true, class: "axis", x1: L, y1: H - B, x2: W - 5, y2: H - B }), h("line", { svg: true, class: "axis", x1: L, y1: 10, x2: L, y2: H - B }),
    h("text", { svg: true, x: 4, y: 16, text: String(max) }), h("text", { svg: true, x: L, y: H - 4, text: "latency (ms, upper bucket edge) — blue: get, orange: put" })];
  edges.forEach((e, i) => {
    const x = L + i * bw;
    const bar = (n, cls, off) => n ? h("rect", { svg: true, class: cls, x: x + off, width: bw / 2 - 2, y: H - B - ((H - B - 10) * n) / max, height: ((H - B - 10) * n) / max }, h("title", { svg: true, text: `${n} ops ≤ ${e} ms` })) : null;
    kids.push(bar(g[i], "bar-get", 1), bar(p[i], "bar-put", bw / 2));
    kids.push(h("text", { svg: true, x: x + 2, y: H - B + 12, text: e < 1 ? e : String(Math.round(e)) }));
  });
  $("#bench-chart").replaceChildren(...kids.filter(Boolean));
  $("#bench-chart").classList.remove("hidden");
}

// ---------- cluster defaults ----------
async function loadDefaults() {
  if (!state.ref) return;
  const r = await api(nodeURL(state.ref, "/admin/defaults"), { timeout: 3000 });
  if (!r.ok || !r.json) return;
  $("#defaults-n").value = r.json.n;
  for (const k of ["r", "w"]) {
    const el = $(`#defaults-${k}`);
    el.max = r.json.n;
    // Never overwrite what the user is typing or has typed and not yet
    // applied.
    if (document.activeElement !== el && !state.defaultsDirty) el.value = r.json[k];
  }
  state.defaults = r.json;
}
async function applyDefaults() {
  const body = JSON.stringify({ r: Number($("#defaults-r").value), w: Number($("#defaults-w").value) });
  const ids = aliveIDs();
  const results = await Promise.all(ids.map(async (id) => [id, await api(nodeURL(id, "/admin/defaults"), { method: "PUT", body, headers: { "Content-Type": "application/json" }, timeout: 5000 })]));
  const bad = results.filter(([, r]) => !r.ok);
  if (bad.length) showError(`defaults: ${bad.map(([id, r]) => `${id}: ${describe(r)}`).join("; ")}`);
  state.defaultsDirty = false;
  const ok = results.filter(([, r]) => r.ok).map(([id]) => id);
  $("#defaults-note").textContent = ok.length ? `R=${JSON.parse(body).r} W=${JSON.parse(body).w} on ${ok.join(", ")}` : "";
  await loadDefaults();
}

// ---------- bench presets (dynago dev only) ----------
const fmtMS = (x) => (x === undefined || x === null) ? "" : (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
async function loadPresets() {
  const r = await api("api/bench/presets", { timeout: 3000 });
  if (!r.ok || !r.json) return;
  state.presets = r.json;
  $("#preset-name").replaceChildren(...r.json.map((p) => h("option", { value: p.name, text: p.title })));
  describePreset();
}
function describePreset() {
  const p = (state.presets || []).find((x) => x.name === $("#preset-name").value);
  $("#preset-description").textContent = p ? `${p.description}. dynago bench ${p.args.join(" ")}` : "";
}
async function runPreset() {
  const preset = $("#preset-name").value;
  const r = await api("api/bench", { method: "POST", body: JSON.stringify({ preset }), headers: { "Content-Type": "application/json" }, timeout: 10000 });
  if (!r.ok) { showError(`bench: ${describe(r)}`); return; }
  state.benchQuorum = state.defaults ? `N${state.defaults.n}R${state.defaults.r}W${state.defaults.w}` : "";
  state.benchShown = 0;
  pollBench();
}
async function cancelPreset() {
  const r = await api("api/bench", { method: "DELETE", timeout: 20000 });
  if (!r.ok) showError(`cancel bench: ${describe(r)}`);
  pollBench();
}
async function pollBench() {
  if (!state.config || !state.config.bench) return;
  const r = await api("api/bench", { timeout: 3000 });
  if (!r.ok || !r.json || !r.json.run) return;
  const run = r.json.run;
  run.results = run.results || [];
  $("#preset-run").disabled = run.running;
  $("#preset-cancel").disabled = !run.running;
  $("#preset-progress").textContent = run.running
    ? `running ${run.preset} · ${run.elapsed_s.toFixed(0)} s · ${run.progress || "starting"}`
    : `${run.preset}: ${run.error ? "failed: " + run.error : `done in ${run.elapsed_s.toFixed(1)} s`}`;
  $("#preset-progress").dataset.state = run.running ? "running" : (run.error ? "failed" : "done");
  // Redraw only when something new arrived.
  const key = `${run.id}:${run.results.length}:${run.running}`;
  if (state.benchKey === key) return;
  state.benchKey = key;
  renderBenchResults(run.results.map((x) => x), run.chart);
  if (!run.running && !run.error && run.results.length && state.benchRecorded !== run.id) {
    state.benchRecorded = run.id;
    recordRun(run);
  }
}
// renderPaperResults shows a paper experiment's points (package lab) as a
// table of their fields, and the chart the run drew.
function renderPaperResults(lines, chart) {
  const cols = [];
  for (const l of lines) for (const k of Object.keys(l)) if (!cols.includes(k) && k !== "experiment") cols.push(k);
  const cell = (v) => {
    if (Array.isArray(v)) return v.map((x) => (typeof x === "number" ? +x.toPrecision(4) : x)).join(" / ");
    if (typeof v === "number") return String(+v.toPrecision(4));
    return v === undefined ? "" : String(v);
  };
  const head = h("thead", {}, h("tr", {}, cols.map((c) => h("th", { text: c }))));
  const rows = lines.map((l) => h("tr", {}, cols.map((c) => h("td", { class: typeof l[c] === "number" ? "num" : "", text: cell(l[c]) }))));
  $("#preset-results").replaceChildren(head, h("tbody", {}, rows));
  $("#preset-charts").replaceChildren(...(chart ? [h("img", { class: "paper-chart", src: chart, alt: `chart of ${lines[0].experiment}` })] : []));
}
function renderBenchResults(lines, chart) {
  if (lines.some((l) => l.experiment !== undefined)) { renderPaperResults(lines, chart); return; }
  const seed = lines.some((l) => l.floor_ms !== undefined);
  const cols = [...(seed ? ["config", "route"] : []), "op", "count", "errors", "mean", "std", "p50", "p99", "p99.9", "max", "ops/s", ...(seed ? ["floor", "mean/floor", "p99.9/floor"] : [])];
  const head = h("thead", {}, h("tr", {}, cols.map((c) => h("th", { class: /^[a-z]/.test(c) && !["config", "route", "op"].includes(c) ? "num" : "", text: ["mean", "std", "p50", "p99", "p99.9", "max", "floor"].includes(c) ? `${c} (ms)` : c }))));
  const ratio = (x, f, limit) => {
    if (!f) return h("td", { class: "num" });
    const v = x / f;
    return h("td", { class: `num ratio${v > limit ? " over" : ""}`, text: `${v.toFixed(2)}×` });
  };
  const rows = lines.map((l) => h("tr", { "data-op": l.op },
    seed ? [h("td", { text: l.config }), h("td", { text: l.route })] : [],
    h("td", { text: l.op }), h("td", { class: "num", text: l.count }), h("td", { class: "num", text: l.errors }),
    ["mean_ms", "std_ms", "p50_ms", "p99_ms", "p999_ms", "max_ms"].map((k) => h("td", { class: "num", text: fmtMS(l[k]) })),
    h("td", { class: "num", text: (l.ops_per_sec || 0).toFixed(0) }),
    seed ? [h("td", { class: "num", text: fmtMS(l.floor_ms) }), ratio(l.mean_ms, l.floor_ms, 1.15), ratio(l.p999_ms, l.floor_ms, 1.5)] : []));
  $("#preset-results").replaceChildren(head, h("tbody", {}, rows));
  $("#preset-charts").replaceChildren(...lines.filter((l) => (l.hist || []).length).map((l) => histChart(l, seed ? `${l.config} ${l.route} ${l.op}` : l.op)));
}
// histChart draws one operation's latency distribution: bars on a log
// latency axis (the bins grow by 2^(1/4)), with p50, p99 and p99.9 marked.
function histChart(l, title) {
  const bins = l.hist;
  const W = 440, H = 200, L = 36, B = 34, T = 18;
  const max = Math.max(1, ...bins.map((b) => b.count));
  const bw = (W - L - 8) / bins.length;
  const y = (n) => H - B - ((H - B - T) * n) / max;
  const lo = Math.log2(bins[0].le_ms) - 0.25, hi = Math.log2(bins[bins.length - 1].le_ms);
  const xOf = (ms) => L + ((Math.log2(Math.max(ms, 1e-6)) - lo) / Math.max(hi - lo, 1e-9)) * (W - L - 8);
  const kids = [
    h("text", { svg: true, x: L, y: 12, text: `${title}: ${l.count} ops, latency (ms, log scale)` }),
    h("line", { svg: true, class: "axis", x1: L, y1: H - B, x2: W - 4, y2: H - B }),
    h("line", { svg: true, class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
    h("text", { svg: true, x: 2, y: T + 8, text: String(max) }),
  ];
  bins.forEach((b, i) => {
    if (b.count) kids.push(h("rect", { svg: true, class: `bar op-${l.op}`, x: L + i * bw + 0.5, width: Math.max(bw - 1, 1), y: y(b.count), height: H - B - y(b.count) },
      h("title", { svg: true, text: `${b.count} ops ≤ ${fmtMS(b.le_ms)} ms` })));
  });
  // x labels: about five, at bin edges.
  const step = Math.max(1, Math.ceil(bins.length / 5));
  for (let i = 0; i < bins.length; i += step) kids.push(h("text", { svg: true, x: L + (i + 1) * bw - 8, y: H - B + 12, text: fmtMS(bins[i].le_ms) }));
  [["p50", l.p50_ms], ["p99", l.p99_ms], ["p99.9", l.p999_ms]].forEach(([name, v], i) => {
    if (!v) return;
    const x = Math.min(Math.max(xOf(v), L), W - 4);
    const end = x > W - 40;
    kids.push(h("line", { svg: true, class: "pct", x1: x, x2: x, y1: T, y2: H - B }),
      h("text", { svg: true, x: end ? x - 2 : x + 2, y: H - B + 22 + (i % 2) * 9, "text-anchor": end ? "end" : "start", text: name }));
  });
  return h("figure", { class: "chart", "data-op": l.op }, h("svg", { svg: true, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title} latency histogram` }, kids));
}
// recordRun keeps one row per finished run so that runs with different
// quorums can be compared side by side.
function recordRun(run) {
  if (run.results.some((l) => l.experiment !== undefined)) return; // paper experiments: their own table and chart
  state.runs = state.runs || [];
  for (const l of run.results) state.runs.push({ id: run.id, preset: run.preset, quorum: l.config || state.benchQuorum || "", route: l.route || "", l });
  const head = h("thead", {}, h("tr", {}, ["run", "preset", "quorums", "route", "op", "mean (ms)", "p99 (ms)", "p99.9 (ms)", "ops/s"].map((c) => h("th", { text: c }))));
  $("#preset-history").replaceChildren(head, h("tbody", {}, state.runs.slice(-60).map((x) => h("tr", {},
    h("td", { text: x.id }), h("td", { text: x.preset }), h("td", { text: x.quorum }), h("td", { text: x.route }), h("td", { text: x.l.op }),
    h("td", { class: "num", text: fmtMS(x.l.mean_ms) }), h("td", { class: "num", text: fmtMS(x.l.p99_ms) }), h("td", { class: "num", text: fmtMS(x.l.p999_ms) }),
    h("td", { class: "num", text: (x.l.ops_per_sec || 0).toFixed(0) })))));
}

// ---------- start ----------
async function loadConfig() {
  for (;;) {
    const r = await api("api/config", { timeout: 3000 });
    if (r.ok && r.json) return r.json;
    showError(`api/config: ${describe(r)}; retrying`);
    await new Promise((res) => setTimeout(res, 3000));
  }
}
function every(ms, fn) {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try { await fn(); } catch (err) { showError(err.message); } finally { running = false; }
  };
  tick();
  return setInterval(tick, ms);
}
async function main() {
  $("#ring-key").addEventListener("input", onRingKey);
  $("#console-form").addEventListener("submit", (e) => { e.preventDefault(); runConsole(); });
  $("#history-form").addEventListener("submit", (e) => { e.preventDefault(); showHistory(); });
  $("#events-filter").addEventListener("input", () => document.querySelectorAll("#events li.event").forEach(applyFilter));
  $("#events-clear").addEventListener("click", () => $("#events").replaceChildren());
  $("#ae-node").addEventListener("change", renderAE);
  $("#cut-node").addEventListener("change", renderCutOthers);
  const cutChoice = () => [$("#cut-node").value, [...document.querySelectorAll("#cut-others input:checked")].map((x) => x.value)];
  $("#cut-apply").addEventListener("click", (e) => { const [id, others] = cutChoice(); cutBetween(id, others, false, e.currentTarget); });
  $("#cut-heal").addEventListener("click", (e) => { const [id, others] = cutChoice(); cutBetween(id, others, true, e.currentTarget); });
  $("#bench-form").addEventListener("submit", (e) => { e.preventDefault(); runBench(); });
  for (const k of ["r", "w"]) $(`#defaults-${k}`).addEventListener("input", () => { state.defaultsDirty = true; });
  $("#defaults-form").addEventListener("submit", (e) => { e.preventDefault(); busy($("#defaults-apply"), applyDefaults); });
  $("#preset-form").addEventListener("submit", (e) => { e.preventDefault(); busy($("#preset-run"), runPreset); });
  $("#preset-name").addEventListener("change", describePreset);
  $("#preset-cancel").addEventListener("click", (e) => busy(e.currentTarget, cancelPreset));
  $("#plan-refresh").addEventListener("click", (e) => planAction("GET", "/admin/plan", "plan", e.currentTarget));
  $("#plan-commit").addEventListener("click", (e) => planAction("POST", "/admin/commit", "committed", e.currentTarget));
  $("#leave-stage").addEventListener("click", (e) => { const id = $("#leave-node").value; if (id) planAction("POST", "/admin/leave/" + encodeURIComponent(id), `staged leave of ${id}`, e.currentTarget); });
  $("#node-add").addEventListener("click", (e) => busy(e.currentTarget, async () => {
    const r = await api("api/nodes", { method: "POST" });
    if (!r.ok) { showError(`add node: ${describe(r)}`); return; }
    await pollProcs();
    await planAction("GET", "/admin/plan", `added ${r.json.id}; commit the plan to give it partitions`);
  }));

  state.config = await loadConfig();
  document.body.classList.toggle("no-control", !state.config.control);
  document.body.classList.toggle("no-bench", !state.config.bench);
  $("#mode").textContent = state.config.mode === "dev" ? "dev cluster" : `served by ${state.config.self}`;
  if (state.config.self) state.ref = state.config.self;
  addIDs(state.config.nodes || []);
  await pollProcs();
  every(1000, pollCluster);
  every(2000, pollProcs);
  every(2000, pollStats);
  every(2000, connectEvents);
  every(2000, () => state.lastKey ? renderLocal(state.lastKey) : null);
  every(5000, loadDefaults);
  // The run's state is polled every second for as long as the page is
  // open: a run started elsewhere (curl, another tab) shows up too, and a
  // failed poll is simply retried.
  if (state.config.bench) { await loadPresets(); every(1000, pollBench); }
}
main().catch((err) => showError(err.message));
