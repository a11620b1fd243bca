// The drawing pad: a 28x28 grey grid shown large, drawn with a soft round brush (pen) or erased.
// Mouse, pen and touch all arrive as pointer events. The grid goes to Streamlit as component
// state only when a stroke ends (pointerup) or on Clear, never while the hand moves.
// Everything from Python is data: text goes through textContent, never innerHTML; no eval.

const SIDE = 28;
const R_IN = 1.0, R_OUT = 2.1; // brush: full ink within R_IN cells of the path, fading to 0 at R_OUT
// Counters read by tests: strokes drawn and states sent.
const STATS = (globalThis.__drawCanvas = globalThis.__drawCanvas || { strokes: 0, sent: 0 });
const VIEWS = new WeakMap(); // parentElement -> view state

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = String(text);
  return e;
}

// Ink (or erase) a soft disc at grid point (x, y), in cell units.
function stamp(view, x, y) {
  const g = view.grid, erase = view.tool === "eraser";
  for (let r = Math.max(0, Math.floor(y - R_OUT)); r <= Math.min(SIDE - 1, Math.ceil(y + R_OUT)); r++) {
    for (let c = Math.max(0, Math.floor(x - R_OUT)); c <= Math.min(SIDE - 1, Math.ceil(x + R_OUT)); c++) {
      const d = Math.hypot(c + 0.5 - x, r + 0.5 - y);
      if (d >= R_OUT) continue;
      const v = d <= R_IN ? 1 : (R_OUT - d) / (R_OUT - R_IN);
      const i = r * SIDE + c;
      g[i] = erase ? Math.min(g[i], 1 - v) : Math.max(g[i], v);
    }
  }
}

// A segment of the stroke: stamps every quarter cell, so fast moves leave no gaps.
function segment(view, a, b) {
  const n = Math.max(1, Math.ceil(Math.hypot(b.x - a.x, b.y - a.y) * 4));
  for (let k = 1; k <= n; k++) stamp(view, a.x + ((b.x - a.x) * k) / n, a.y + ((b.y - a.y) * k) / n);
}

function paint(view) {
  const img = view.ctx.createImageData(SIDE, SIDE);
  for (let p = 0; p < SIDE * SIDE; p++) {
    const v = Math.round(255 * view.grid[p]);
    img.data[4 * p] = img.data[4 * p + 1] = img.data[4 * p + 2] = v;
    img.data[4 * p + 3] = 255;
  }
  view.ctx.putImageData(img, 0, 0);
  let ink = 0;
  for (let p = 0; p < SIDE * SIDE; p++) ink += view.grid[p] > 0.05 ? 1 : 0;
  view.canvas.setAttribute("data-ink", String(ink));
}

function send(view) {
  const pixels = Array.from(view.grid, (v) => Math.round(v * 1000) / 1000);
  STATS.sent += 1;
  view.setStateValue("image", { key: view.data.initial_key, pixels });
}

function gridPoint(view, ev) {
  const rect = view.canvas.getBoundingClientRect();
  return { x: ((ev.clientX - rect.left) / rect.width) * SIDE, y: ((ev.clientY - rect.top) / rect.height) * SIDE };
}

function bindPointer(view) {
  const cv = view.canvas;
  cv.addEventListener("pointerdown", (ev) => {
    if (ev.button !== undefined && ev.button > 0) return; // left button, pen tip or a finger only
    ev.preventDefault();
    try { cv.setPointerCapture(ev.pointerId); } catch (e) { /* a pointer the browser no longer tracks */ }
    view.stroke = { id: ev.pointerId, last: gridPoint(view, ev) };
    stamp(view, view.stroke.last.x, view.stroke.last.y);
    paint(view);
  });
  cv.addEventListener("pointermove", (ev) => {
    const s = view.stroke;
    if (!s || ev.pointerId !== s.id) return;
    const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [];
    for (const e of events.length ? events : [ev]) {
      const p = gridPoint(view, e);
      segment(view, s.last, p);
      s.last = p;
    }
    paint(view);
  });
  const end = (ev) => {
    if (!view.stroke || ev.pointerId !== view.stroke.id) return;
    view.stroke = null;
    STATS.strokes += 1;
    send(view);
  };
  cv.addEventListener("pointerup", end);
  cv.addEventListener("pointercancel", end);
}

function setTool(view, tool) {
  view.tool = tool;
  view.toolButtons.forEach((b) => b.setAttribute("aria-pressed", String(b.getAttribute("data-tool") === tool)));
  view.canvas.setAttribute("data-tool", tool);
}

function build(view, data) {
  const root = view.root;
  root.replaceChildren();
  view.canvas = document.createElement("canvas");
  view.canvas.width = view.canvas.height = SIDE;
  view.canvas.className = "dc-grid";
  view.canvas.setAttribute("data-role", "draw-grid");
  view.canvas.setAttribute("role", "img");
  view.canvas.setAttribute("aria-label", data.label || "drawing pad, 28 by 28 pixels");
  view.canvas.style.width = view.canvas.style.height = (data.size || 280) + "px";
  view.ctx = view.canvas.getContext("2d");
  const bar = el("div", "dc-bar");
  view.toolButtons = [["pen", "Pen"], ["eraser", "Eraser"]].map(([tool, text]) => {
    const b = el("button", "dc-btn", text);
    b.type = "button";
    b.setAttribute("data-tool", tool);
    b.addEventListener("click", () => setTool(view, tool));
    return b;
  });
  const clear = el("button", "dc-btn", "Clear");
  clear.type = "button";
  clear.setAttribute("data-role", "draw-clear");
  clear.addEventListener("click", () => {
    view.grid.fill(0);
    paint(view);
    send(view);
  });
  bar.append(...view.toolButtons, clear);
  root.append(view.canvas, bar, el("div", "dc-hint", data.hint || "Draw with the mouse, a pen or a finger."));
  bindPointer(view);
  setTool(view, "pen");
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let view = VIEWS.get(parentElement);
  if (!view) {
    view = { root: el("div", "dc-pad"), grid: new Float32Array(SIDE * SIDE), sig: null, loaded: undefined };
    parentElement.append(view.root);
    VIEWS.set(parentElement, view);
  }
  view.data = data;
  view.setStateValue = setStateValue;
  const sig = JSON.stringify([data.size, data.label, data.hint]);
  if (sig !== view.sig) {
    build(view, data);
    view.sig = sig;
  }
  if (view.loaded !== data.initial_key) { // a new start image (or none): it replaces the drawing
    view.grid.fill(0);
    const init = data.initial;
    if (Array.isArray(init) && init.length === SIDE * SIDE) {
      init.forEach((v, i) => { view.grid[i] = Math.min(1, Math.max(0, Number(v) || 0)); });
    }
    view.loaded = data.initial_key;
  }
  paint(view);
  view.root.setAttribute("data-ready", "1");
  return () => {
    if (parentElement.isConnected) return; // a superseded render, not an unmount
    VIEWS.delete(parentElement);
  };
}
