// The live decoder: sliders (or an interpolation scrubber) that decode in the browser on every
// input event. Follows kernels.js in the same module (explorer/ui/live_decoder/__init__.py).
// Everything from Python is data: text goes through textContent, never innerHTML; no eval.

const K = globalThis.LatentKernels;
// Weights by checkpoint hash, kept for the tab's lifetime: switching back to a model is instant.
const WEIGHTS = (globalThis.__latentWeights = globalThis.__latentWeights || new Map());
// Counters read by tests and bench/drag_bench.py.
const STATS = (globalThis.__liveDecoder = globalThis.__liveDecoder || { frames: 0, decodeMs: [], fetches: 0 });
const VIEWS = new WeakMap(); // parentElement -> view state

function weightsFor(model) {
  let p = WEIGHTS.get(model.key);
  if (!p) {
    STATS.fetches += 1;
    p = fetch(model.url)
      .then((r) => {
        if (!r.ok) throw new Error("weights: HTTP " + r.status);
        return r.arrayBuffer();
      })
      .then((buf) => {
        if (buf.byteLength !== 4 * model.spec.n_floats) throw new Error("weights: wrong size");
        return new Float32Array(buf);
      });
    p.catch(() => WEIGHTS.delete(model.key));
    WEIGHTS.set(model.key, p);
  }
  return p;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function fmt(v) {
  return (v >= 0 ? "+" : "") + Number(v).toFixed(2);
}

function draw(canvas, out, x) {
  const ctx = canvas.getContext("2d");
  if (out.shape.length === 3) {
    const [c, h, w] = out.shape;
    const img = ctx.createImageData(w, h);
    for (let p = 0; p < h * w; p++) {
      for (let ch = 0; ch < 3; ch++) img.data[4 * p + ch] = Math.round(255 * Math.min(1, Math.max(0, x[(c === 3 ? ch : 0) * h * w + p])));
      img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  } else {  // a label modality: class probabilities as bars
    const n = x.length, W = canvas.width, H = canvas.height, bw = W / n;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
    for (let i = 0; i < n; i++) {
      ctx.fillStyle = "#4f46e5";
      const bh = (H - 14) * x[i];
      ctx.fillRect(i * bw + 2, H - 14 - bh, bw - 4, bh);
      ctx.fillStyle = "#333";
      ctx.font = "10px sans-serif";
      ctx.fillText(String(i), i * bw + bw / 2 - 3, H - 2);
    }
  }
}

function build(view, data) {
  const root = view.root;
  root.replaceChildren();
  view.inputs = [];
  view.readouts = [];
  const controls = el("div", "lx-controls");
  const images = el("div", "lx-images");
  const rows = data.mode === "interp" ? [{ label: "t", min: 0, max: 1, step: 0.01, role: "t-slider" }]
    : data.mode === "hover" ? [] : data.sliders;
  rows.forEach((s, i) => {
    const row = el("label", "lx-row");
    const name = el("span", "lx-name", s.label);
    const input = document.createElement("input");
    input.type = "range";
    input.min = String(s.min);
    input.max = String(s.max);
    input.step = String(s.step);
    input.setAttribute("data-role", s.role || (s.dim !== undefined && s.dim !== null ? "latent-slider" : "vector-slider"));
    input.setAttribute("aria-label", s.label);
    const val = el("span", "lx-val");
    input.addEventListener("input", () => { val.textContent = fmt(input.value); schedule(view); });
    input.addEventListener("change", () => commit(view));
    row.append(name, input, val);
    controls.append(row);
    view.inputs.push(input);
    view.readouts.push(val);
  });
  view.canvases = (data.outputs || [0]).map((k, j) => {
    const out = data.model.spec.outputs[k];
    const fig = el("figure", "lx-fig");
    const canvas = document.createElement("canvas");
    canvas.setAttribute("data-role", "decoded");
    canvas.setAttribute("data-output", String(k));
    if (out.shape.length === 3) { canvas.width = out.shape[2]; canvas.height = out.shape[1]; canvas.className = "lx-img"; }
    else { canvas.width = 200; canvas.height = 100; canvas.className = "lx-bars"; }
    canvas.style.width = (data.size || 240) + "px";
    fig.append(canvas, el("figcaption", "", (data.captions || [])[j] || "decode(z)"));
    images.append(fig);
    return { canvas, out };
  });
  view.codeLine = el("div", "lx-code");
  view.status = el("div", "lx-status");
  images.append(view.codeLine, view.status);
  root.append(controls, images);
}

function setValues(view, values) {
  view.inputs.forEach((input, i) => {
    if (values[i] === undefined || values[i] === null) return;
    input.value = String(values[i]);
    view.readouts[i].textContent = fmt(input.value);
  });
}

function currentCode(view) {
  const d = view.data;
  if (d.mode === "interp") {
    const t = Number(view.inputs[0].value);
    return (d.interp.method === "slerp" ? K.slerp : K.lerp)(d.interp.a, d.interp.b, t);
  }
  if (d.mode === "hover") return view.hoverCode || d.code;
  const z = d.code.slice();
  d.sliders.forEach((s, i) => {
    const v = Number(view.inputs[i].value);
    if (s.dim !== undefined && s.dim !== null) z[s.dim] = v;
    else if (s.vec) for (let j = 0; j < z.length; j++) z[j] += v * s.vec[j];
  });
  return z;
}

function render(view) {
  view.pending = false;
  const W = view.weights;
  if (!W) return;
  const z = currentCode(view);
  const t0 = performance.now();
  const outs = view.canvases.map(({ out }, j) => K.decode(view.data.model.spec, W, z, view.data.outputs[j], view.data.y));
  STATS.decodeMs.push(performance.now() - t0);
  if (STATS.decodeMs.length > 2000) STATS.decodeMs.splice(0, 1000);
  view.canvases.forEach(({ canvas, out }, j) => draw(canvas, out, outs[j]));
  STATS.frames += 1;
  const shown = z.slice(0, 16).map(fmt).join(", ");
  view.codeLine.textContent = "z = [" + shown + (z.length > 16 ? ", …]" : "]");
}

function schedule(view) {
  if (view.pending) return;
  view.pending = true;
  requestAnimationFrame(() => render(view));
}

// Hover mode: follow the pointer over the Plotly chart in the element keyed `plot_key` and decode
// the latent point under it (a raw-axes map: the plot's x and y are latent coordinates).
function bindHover(view) {
  const d = view.data;
  const gd = document.querySelector(".st-key-" + CSS.escape(d.plot_key) + " .js-plotly-plot");
  if (!gd || gd === view.hoverPlot) return;
  if (view.hoverPlot) view.hoverPlot.removeEventListener("mousemove", view.onHover);
  view.hoverPlot = gd;
  view.onHover = (ev) => {
    const fl = gd._fullLayout;
    if (!fl || !fl.xaxis || !fl.yaxis) return;
    const rect = gd.getBoundingClientRect(), xa = fl.xaxis, ya = fl.yaxis;
    const px = ev.clientX - rect.left - xa._offset, py = ev.clientY - rect.top - ya._offset;
    if (px < 0 || py < 0 || px > xa._length || py > ya._length) return;
    const z = view.data.code.slice();
    z[view.data.axes[0]] = xa.p2l(px);
    z[view.data.axes[1]] = ya.p2l(py);
    view.hoverCode = z;
    schedule(view);
  };
  gd.addEventListener("mousemove", view.onHover);
}

// On release (a `change` event) the values go to Streamlit as state, which reruns the page. Arrow
// keys fire `change` on every press: a short quiet period turns a burst of presses into one rerun.
const COMMIT_DELAY_MS = 150;

function commit(view) {
  clearTimeout(view.commitTimer);
  view.commitTimer = setTimeout(() => {
    const values = view.inputs.map((i) => Number(i.value));
    view.setStateValue("values", { rev: view.data.rev, values });
  }, COMMIT_DELAY_MS);
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let view = VIEWS.get(parentElement);
  if (!view) {
    view = { root: el("div", "lx-live"), rev: null, sig: null };
    parentElement.append(view.root);
    VIEWS.set(parentElement, view);
  }
  if (view.key !== data.model.key) { view.weights = null; view.key = data.model.key; }
  view.data = data;
  view.setStateValue = setStateValue;
  const sig = JSON.stringify([data.model.key, data.mode, data.outputs, data.size, data.captions,
    (data.sliders || []).map((s) => [s.label, s.min, s.max, s.step, s.dim])]);
  if (sig !== view.sig) {
    build(view, data);
    view.sig = sig;
    view.rev = null;
  }
  if (view.rev !== data.rev) {
    setValues(view, data.mode === "interp" ? [data.interp.t] : data.values);
    view.rev = data.rev;
    view.root.setAttribute("data-rev", String(data.rev));  // tests wait on it after Reset/Randomize
  }
  if (data.mode === "hover" && !view.hoverTimer) {  // the chart is drawn (and redrawn) by Streamlit
    view.hoverTimer = setInterval(() => bindHover(view), 400);
    bindHover(view);
  }
  view.root.setAttribute("data-ready", "0");
  weightsFor(data.model).then(
    (W) => {
      if (view.data !== data) return;
      view.weights = W;
      view.status.textContent = "";
      render(view);
      view.root.setAttribute("data-ready", "1");
    },
    (err) => { view.status.textContent = "Live decoding failed: " + String(err.message || err); },
  );
  return () => {  // also called at once for a render Streamlit superseded: act only once unmounted
    if (parentElement.isConnected) return;
    clearInterval(view.hoverTimer);
    if (view.hoverPlot) view.hoverPlot.removeEventListener("mousemove", view.onHover);
    VIEWS.delete(parentElement);
  };
}
