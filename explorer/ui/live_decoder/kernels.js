// Typed-array kernels that run a decoder exported by explorer/export.py.
// A plain script (no imports, no DOM): it defines globalThis.LatentKernels, used by
// component.js in the app and loaded on its own by tests/test_live_decoder.py.
(function () {
  "use strict";

  function linear(x, W, op) {
    const n = op.in, m = op.out, y = new Float32Array(m);
    for (let o = 0; o < m; o++) {
      let s = 0;
      const row = op.w + o * n;
      for (let i = 0; i < n; i++) s += W[row + i] * x[i];
      y[o] = s + W[op.b + o];
    }
    return y;
  }

  // torch ConvTranspose2d: weight (cin, cout, kh, kw); out[co, iy*s - p + ky, ix*s - p + kx] += in * w
  function convTranspose2d(x, W, op) {
    const [ci, ih, iw] = op.in_shape, [co, oh, ow] = op.out_shape;
    const [kh, kw] = op.k, [sh, sw] = op.stride, [ph, pw] = op.pad;
    const acc = new Float64Array(co * oh * ow);
    for (let c = 0; c < co; c++) acc.fill(W[op.b + c], c * oh * ow, (c + 1) * oh * ow);
    for (let a = 0; a < ci; a++) {
      for (let iy = 0; iy < ih; iy++) {
        for (let ix = 0; ix < iw; ix++) {
          const v = x[(a * ih + iy) * iw + ix];
          if (v === 0) continue;
          for (let c = 0; c < co; c++) {
            const wbase = op.w + ((a * co + c) * kh) * kw;
            for (let ky = 0; ky < kh; ky++) {
              const oy = iy * sh - ph + ky;
              if (oy < 0 || oy >= oh) continue;
              const orow = (c * oh + oy) * ow;
              for (let kx = 0; kx < kw; kx++) {
                const ox = ix * sw - pw + kx;
                if (ox < 0 || ox >= ow) continue;
                acc[orow + ox] += v * W[wbase + ky * kw + kx];
              }
            }
          }
        }
      }
    }
    return Float32Array.from(acc);
  }

  // torch Conv2d: weight (cout, cin, kh, kw)
  function conv2d(x, W, op) {
    const [ci, ih, iw] = op.in_shape, [co, oh, ow] = op.out_shape;
    const [kh, kw] = op.k, [sh, sw] = op.stride, [ph, pw] = op.pad;
    const y = new Float32Array(co * oh * ow);
    for (let c = 0; c < co; c++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let s = W[op.b + c];
          for (let a = 0; a < ci; a++) {
            const wbase = op.w + ((c * ci + a) * kh) * kw;
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * sh - ph + ky;
              if (iy < 0 || iy >= ih) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * sw - pw + kx;
                if (ix < 0 || ix >= iw) continue;
                s += x[(a * ih + iy) * iw + ix] * W[wbase + ky * kw + kx];
              }
            }
          }
          y[(c * oh + oy) * ow + ox] = s;
        }
      }
    }
    return y;
  }

  function map(x, f) {
    for (let i = 0; i < x.length; i++) x[i] = f(x[i]);
    return x;
  }

  const sigmoid = (v) => 1 / (1 + Math.exp(-v));

  function runOp(x, W, op) {
    switch (op.op) {
      case "linear": return linear(x, W, op);
      case "conv_transpose2d": return convTranspose2d(x, W, op);
      case "conv2d": return conv2d(x, W, op);
      case "relu": return map(x, (v) => (v > 0 ? v : 0));
      case "leaky_relu": return map(x, (v) => (v > 0 ? v : v * op.slope));
      case "elu": return map(x, (v) => (v > 0 ? v : op.alpha * (Math.exp(v) - 1)));
      case "sigmoid": return map(x, sigmoid);
      case "tanh": return map(x, Math.tanh);
      default: throw new Error("unknown op " + String(op.op));
    }
  }

  function finalize(x, final) {
    if (final === "sigmoid") return map(x, sigmoid);
    if (final === "softmax") {
      let mx = -Infinity, s = 0;
      for (const v of x) mx = Math.max(mx, v);
      for (let i = 0; i < x.length; i++) { x[i] = Math.exp(x[i] - mx); s += x[i]; }
      return map(x, (v) => v / s);
    }
    return x;
  }

  // Decode one code z (array of latent_dim numbers) through output `k` of `spec`.
  // `y` is the class for conditional models. Returns a Float32Array of prod(shape).
  function decode(spec, W, z, k, y) {
    const out = spec.outputs[k || 0];
    let x = new Float32Array(out.in);
    for (let i = 0; i < spec.latent_dim; i++) x[i] = z[i];
    if (spec.n_classes > 0) x[spec.latent_dim + (y || 0)] = 1;
    for (const op of out.ops) x = runOp(x, W, op);
    return finalize(x, out.final);
  }

  function lerp(a, b, t) {
    return a.map((v, i) => (1 - t) * v + t * b[i]);
  }

  // The same path as BaseVAE.interpolate(mode="slerp").
  function slerp(a, b, t) {
    let dot = 0, na = 0, nb = 0;
    for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
    const cos = dot / Math.max(Math.sqrt(na) * Math.sqrt(nb), 1e-8);
    const omega = Math.acos(Math.min(1 - 1e-7, Math.max(-1 + 1e-7, cos)));
    if (Math.abs(omega) < 1e-4) return lerp(a, b, t);
    const s = Math.sin(omega), p = Math.sin((1 - t) * omega) / s, q = Math.sin(t * omega) / s;
    return a.map((v, i) => p * v + q * b[i]);
  }

  globalThis.LatentKernels = { decode, lerp, slerp };
})();
