// Draws a run's steps as a DAG in SVG: one column per depth (longest path from a root), so steps that can
// run in parallel stand in the same column. Each node shows the step's status, agent, attempts and duration;
// its error is in the node's tooltip and in the steps table below.

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 196;
const NODE_H = 66;
const GAP_X = 44;
const GAP_Y = 18;
const PAD = 12;
export const MAX_DRAWN = 400;

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function truncate(text, max) {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

// Depth of every step: 0 for roots, else 1 + the deepest dependency (iterative, so deep chains are fine).
export function depths(steps) {
  const byId = new Map(steps.map((s) => [s.step_id, s]));
  const depth = new Map();
  for (const start of steps) {
    const stack = [start.step_id];
    while (stack.length) {
      const id = stack[stack.length - 1];
      if (depth.has(id)) { stack.pop(); continue; }
      const deps = (byId.get(id)?.depends_on || []).filter((d) => byId.has(d));
      const missing = deps.filter((d) => !depth.has(d));
      if (missing.length) { stack.push(...missing); continue; }
      depth.set(id, deps.length ? 1 + Math.max(...deps.map((d) => depth.get(d))) : 0);
      stack.pop();
    }
  }
  return depth;
}

export function layout(steps) {
  const depth = depths(steps);
  const columns = [];
  for (const step of steps) {
    const d = depth.get(step.step_id) || 0;
    (columns[d] ||= []).push(step);
  }
  const tallest = Math.max(1, ...columns.map((c) => (c ? c.length : 0)));
  const height = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y;
  const positions = new Map();
  columns.forEach((column, ci) => {
    if (!column) return;
    const used = column.length * NODE_H + (column.length - 1) * GAP_Y;
    const top = (height - used) / 2;
    column.forEach((step, ri) => {
      positions.set(step.step_id, { x: PAD + ci * (NODE_W + GAP_X), y: top + ri * (NODE_H + GAP_Y) });
    });
  });
  const width = PAD * 2 + columns.length * NODE_W + Math.max(0, columns.length - 1) * GAP_X;
  return { positions, width, height };
}

export function drawDag(svg, steps) {
  svg.replaceChildren();
  if (steps.length > MAX_DRAWN) {
    svg.setAttribute("width", 480);
    svg.setAttribute("height", 40);
    svg.append(el("text", { x: 8, y: 24, class: "note" }, `${steps.length} steps: too many to draw; see the table.`));
    return;
  }
  const { positions, width, height } = layout(steps);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const defs = el("defs");
  const marker = el("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  });
  marker.append(el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
  defs.append(marker);
  svg.append(defs);

  const edges = el("g", { class: "edges" });
  for (const step of steps) {
    const to = positions.get(step.step_id);
    for (const dep of step.depends_on || []) {
      const from = positions.get(dep);
      if (!from || !to) continue;
      const x1 = from.x + NODE_W;
      const y1 = from.y + NODE_H / 2;
      const x2 = to.x - 2;
      const y2 = to.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      edges.append(el("path", {
        d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`, class: "edge", "marker-end": "url(#arrow)",
      }));
    }
  }
  svg.append(edges);

  for (const step of steps) {
    const { x, y } = positions.get(step.step_id);
    const node = el("g", {
      class: `node status-${step.status}`, transform: `translate(${x} ${y})`,
      "data-step-id": step.step_id, "data-status": step.status,
    });
    const tip = [`${step.step_id} (${step.action})`, `status: ${step.status}`];
    if (step.error) tip.push(`${step.error.code}: ${step.error.message}`);
    node.append(el("title", {}, tip.join("\n")));
    node.append(el("rect", { width: NODE_W, height: NODE_H, rx: 8, ry: 8, class: "box" }));
    node.append(el("rect", { width: 6, height: NODE_H, rx: 3, ry: 3, class: "stripe" }));
    node.append(el("text", { x: 14, y: 19, class: "title" }, truncate(step.step_id, 24)));
    node.append(el("text", { x: 14, y: 37, class: "meta" }, truncate(step.agent_id, 19)));
    node.append(el("text", { x: NODE_W - 8, y: 37, class: "state", "text-anchor": "end" }, step.status));
    const facts = [`attempts ${step.attempts}`];
    if (step.duration_ms !== null && step.duration_ms !== undefined) facts.push(formatDuration(step.duration_ms));
    node.append(el("text", { x: 14, y: 54, class: "meta" }, facts.join(" · ")));
    if (step.error) {
      node.append(el("text", { x: NODE_W - 8, y: 54, class: "errcode", "text-anchor": "end" }, step.error.code));
    }
    svg.append(node);
  }
}
