// The dashboard's renderer: one inline-SVG line chart per metric, runs overlaid, with
// TensorBoard-style smoothing, a legend that hides runs, hover read-outs and the configs.
// It draws from the JSON in <script id="dashboard-data">, or, when <body data-poll=URL>,
// from that URL, fetched on load and again every data-interval milliseconds.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const LABELS = {train_loss: "train loss", val_loss: "validation loss", lr: "learning rate",
                  grad_norm: "gradient norm", tokens_per_sec: "tokens / s"};
  const W = 480, H = 300, LEFT = 64, RIGHT = 16, TOP = 30, BOTTOM = 44;
  const params = new URLSearchParams(location.search);
  const state = {data: null, hidden: new Set(), smoothing: 0.6, xaxis: "step", log: false};
  if (params.has("smoothing")) {
    state.smoothing = Math.min(0.99, Math.max(0, +params.get("smoothing") || 0));
  }
  if (params.get("x") === "time") state.xaxis = "time";
  if (params.get("log") === "1") state.log = true;

  function svg(tag, attrs, parent, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function html(tag, attrs, parent, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  // Exponential moving average with the bias of its zero start divided out, so the first
  // smoothed point is the first value (TensorBoard's smoothing): weight 0 draws the raw curve.
  function smooth(ys, weight) {
    let acc = 0;
    return ys.map((y, i) => {
      acc = weight * acc + (1 - weight) * y;
      return acc / (1 - Math.pow(weight, i + 1));
    });
  }

  // About `count` ticks at multiples of 1, 2 or 5 times a power of ten, inside [lo, hi].
  function ticks(lo, hi, count) {
    const raw = (hi - lo) / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
    const r = raw / power, step = (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * power;
    const out = [];
    for (let i = Math.ceil(lo / step); i * step <= hi; i++) out.push(i * step);
    return out;
  }

  // Powers of ten inside [10^lo, 10^hi] (every few for a wide range); linear ticks in value
  // space when the range spans less than two decades.
  function logTicks(lo, hi) {
    const first = Math.ceil(lo), last = Math.floor(hi), every = Math.ceil((last - first + 1) / 6);
    if (last - first < 1) return ticks(Math.pow(10, lo), Math.pow(10, hi), 5);
    const out = [];
    for (let k = first; k <= last; k += every) out.push(Math.pow(10, k));
    return out;
  }

  function trim(s) { return s.includes(".") ? s.replace(/\.?0+$/, "") : s; }

  // Four significant digits; k/M/G from ten thousand, exponents below a hundredth. An axis
  // passes its largest tick as `scale`, so that all its labels take the same form.
  function format(v, scale = Math.abs(v)) {
    if (v === 0) return "0";
    if (scale >= 1e4) {
      const [d, unit] = scale >= 1e9 ? [1e9, "G"] : scale >= 1e6 ? [1e6, "M"] : [1e3, "k"];
      return trim((v / d).toPrecision(4)) + unit;
    }
    if (scale < 1e-2) {
      const [mantissa, exponent] = v.toExponential(3).split("e");
      return trim(mantissa) + "e" + exponent;
    }
    return trim(v.toPrecision(4));
  }

  function axisLabels(values) {
    const scale = Math.max(...values.map(Math.abs));
    return values.map((v) => format(v, scale));
  }

  function label(metric) { return LABELS[metric] || metric; }

  function colour(index) { return COLOURS[index % COLOURS.length]; }

  function swatch(background, parent) {
    return html("span", {class: "swatch", style: `background:${background}`}, parent);
  }

  // The visible runs' points of one metric: x (step or seconds), raw and smoothed y.
  function curves(metric) {
    const out = [];
    state.data.runs.forEach((run, index) => {
      const points = (run.metrics[metric] || []).filter(
        (p) => state.xaxis === "step" || p[2] !== null);
      if (state.hidden.has(run.name) || points.length === 0) return;
      const xs = points.map((p) => state.xaxis === "step" ? p[0] : p[2]);
      const ys = points.map((p) => p[1]);
      out.push({run: run.name, colour: colour(index), xs, ys,
                smoothed: smooth(ys, state.smoothing)});
    });
    return out;
  }

  function extent(values) {
    let lo = Math.min(...values), hi = Math.max(...values);
    if (lo === hi) { const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1; lo -= pad; hi += pad; }
    return [lo, hi];
  }

  function path(xs, ys, sx, sy) {
    return xs.map((x, i) => (i ? "L" : "M") + sx(x).toFixed(2) + "," + sy(ys[i]).toFixed(2))
      .join(" ");
  }

  function chart(metric) {
    const figure = html("figure", {class: "chart", "data-metric": metric});
    const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, class: "plot", role: "img",
                             "aria-label": label(metric)}, figure);
    svg("text", {class: "title", x: W / 2, y: 18, "text-anchor": "middle"}, root, label(metric));
    const lines = curves(metric);
    if (lines.length === 0) {
      svg("text", {class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle"}, root, "no points");
      return figure;
    }
    const [x0, x1] = extent(lines.flatMap((c) => c.xs));
    // A log scale where asked and every value shown is positive (smoothed values are then too).
    const log = state.log && lines.every((c) => c.ys.every((y) => y > 0));
    const ty = log ? Math.log10 : (y) => y;
    let [y0, y1] = extent(lines.flatMap((c) => c.ys.map(ty)));
    const pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
    const sx = (x) => LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    const sy = (y) => H - BOTTOM - (ty(y) - y0) / (y1 - y0) * (H - TOP - BOTTOM);
    const axes = svg("g", {class: "axes"}, root);
    const xticks = ticks(x0, x1, 6), yticks = log ? logTicks(y0, y1) : ticks(y0, y1, 5);
    const xlabels = axisLabels(xticks), ylabels = axisLabels(yticks);
    xticks.forEach((t, i) => {
      svg("line", {class: "grid", x1: sx(t), x2: sx(t), y1: TOP, y2: H - BOTTOM}, axes);
      svg("text", {class: "tick", x: sx(t), y: H - BOTTOM + 16, "text-anchor": "middle"}, axes,
          xlabels[i]);
    });
    yticks.forEach((t, i) => {
      svg("line", {class: "grid", x1: LEFT, x2: W - RIGHT, y1: sy(t), y2: sy(t)}, axes);
      svg("text", {class: "tick", x: LEFT - 6, y: sy(t) + 4, "text-anchor": "end"}, axes,
          ylabels[i]);
    });
    svg("line", {class: "axis", x1: LEFT, x2: W - RIGHT, y1: H - BOTTOM, y2: H - BOTTOM}, axes);
    svg("line", {class: "axis", x1: LEFT, x2: LEFT, y1: TOP, y2: H - BOTTOM}, axes);
    const xtitle = state.xaxis === "step" ? "step" : "relative time (s)";
    svg("text", {class: "axis-label x", x: (LEFT + W - RIGHT) / 2, y: H - 6,
                 "text-anchor": "middle"}, axes, xtitle);
    svg("text", {class: "axis-label y", "text-anchor": "middle",
                 transform: `translate(14 ${(TOP + H - BOTTOM) / 2}) rotate(-90)`}, axes,
        label(metric) + (log ? " (log scale)" : ""));
    for (const c of lines) {
      const attrs = {"data-run": c.run, "data-metric": metric, stroke: c.colour, fill: "none"};
      svg("path", {...attrs, class: "raw", d: path(c.xs, c.ys, sx, sy)}, root);
      svg("path", {...attrs, class: "smoothed", d: path(c.xs, c.smoothed, sx, sy)}, root);
      if (c.xs.length === 1) {
        svg("circle", {class: "dot", cx: sx(c.xs[0]), cy: sy(c.ys[0]), r: 3, fill: c.colour}, root);
      }
    }
    hover(root, lines, sx, sy, x0, x1);
    return figure;
  }

  function nearest(xs, x) {
    let lo = 0, hi = xs.length - 1;
    while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (xs[mid] <= x) lo = mid; else hi = mid; }
    return Math.abs(xs[hi] - x) < Math.abs(xs[lo] - x) ? hi : lo;
  }

  // A crosshair and, per run, the point nearest the pointer with its smoothed and raw values.
  function hover(root, lines, sx, sy, x0, x1) {
    const layer = svg("g", {class: "hover", visibility: "hidden"}, root);
    const rule = svg("line", {class: "crosshair", y1: TOP, y2: H - BOTTOM}, layer);
    const dots = lines.map((c) => svg("circle", {r: 3.5, fill: c.colour}, layer));
    const tip = document.getElementById("tooltip");
    root.addEventListener("mousemove", (event) => {
      const box = root.getBoundingClientRect();
      const px = (event.clientX - box.left) * W / box.width;
      const x = x0 + (px - LEFT) / (W - LEFT - RIGHT) * (x1 - x0);
      rule.setAttribute("x1", px); rule.setAttribute("x2", px);
      layer.setAttribute("visibility", "visible");
      tip.replaceChildren();
      const table = html("table", {}, tip);
      const head = html("tr", {}, table);
      for (const h of ["run", state.xaxis === "step" ? "step" : "time (s)", "smoothed", "value"]) {
        html("th", {}, head, h);
      }
      lines.forEach((c, k) => {
        const i = nearest(c.xs, x);
        dots[k].setAttribute("cx", sx(c.xs[i])); dots[k].setAttribute("cy", sy(c.smoothed[i]));
        const row = html("tr", {}, table);
        swatch(c.colour, html("td", {}, row)).after(c.run);
        html("td", {}, row, state.xaxis === "step" ? String(c.xs[i]) : format(c.xs[i]));
        for (const v of [c.smoothed[i], c.ys[i]]) html("td", {}, row, format(v));
      });
      tip.style.left = (event.pageX + 14) + "px";
      tip.style.top = (event.pageY + 14) + "px";
      tip.hidden = false;
    });
    root.addEventListener("mouseleave", () => {
      layer.setAttribute("visibility", "hidden");
      tip.hidden = true;
    });
  }

  function legend() {
    const box = document.getElementById("legend");
    box.replaceChildren();
    state.data.runs.forEach((run, index) => {
      const item = html("label", {class: "run", title: run.path}, box);
      const check = html("input", {type: "checkbox"}, item);
      check.checked = !state.hidden.has(run.name);
      check.addEventListener("change", () => {
        if (check.checked) state.hidden.delete(run.name); else state.hidden.add(run.name);
        charts();
      });
      swatch(colour(index), item);
      item.append(run.name);
    });
  }

  function charts() {
    const box = document.getElementById("charts");
    box.replaceChildren(...state.data.metrics.map(chart));
    if (state.data.metrics.length === 0) html("p", {class: "empty"}, box, "No metrics logged yet.");
  }

  // One row per config key, one column per run; rows where the runs differ are marked.
  // A config's values as JSON text, nested objects spread out: {"model": {"n_layer": 4}}
  // gives {"model.n_layer": "4"}.
  function flatten(config, prefix = "", out = {}) {
    for (const [k, v] of Object.entries(config)) {
      if (v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) {
        flatten(v, prefix + k + ".", out);
      } else {
        out[prefix + k] = JSON.stringify(v);
      }
    }
    return out;
  }

  function configs() {
    const box = document.getElementById("configs");
    box.replaceChildren();
    const runs = state.data.runs, flat = runs.map((run) => flatten(run.config)), keys = [];
    for (const config of flat) {
      for (const k of Object.keys(config)) if (!keys.includes(k)) keys.push(k);
    }
    if (keys.length === 0) { html("p", {class: "empty"}, box, "No config.json found."); return; }
    const table = html("table", {class: "config"}, box);
    const head = html("tr", {}, html("thead", {}, table));
    html("th", {}, head, "key");
    runs.forEach((run, index) => {
      const th = html("th", {}, head);
      swatch(colour(index), th).after(run.name);
    });
    const body = html("tbody", {}, table);
    for (const k of keys) {
      const cells = flat.map((config) => k in config ? config[k] : "");
      const row = html("tr", new Set(cells).size > 1 ? {class: "differs"} : {}, body);
      html("th", {}, row, k);
      for (const cell of cells) html("td", {}, row, cell);
    }
  }

  function draw(data) {
    state.data = data;
    legend();
    charts();
    configs();
  }

  function controls() {
    const slider = document.getElementById("smoothing");
    const shown = document.getElementById("smoothing-value");
    slider.value = state.smoothing;
    shown.textContent = state.smoothing.toFixed(2);
    slider.addEventListener("input", () => {
      state.smoothing = +slider.value;
      shown.textContent = state.smoothing.toFixed(2);
      if (state.data) charts();
    });
    const xaxis = document.getElementById("xaxis");
    xaxis.value = state.xaxis;
    xaxis.addEventListener("change", () => {
      state.xaxis = xaxis.value;
      if (state.data) charts();
    });
    const log = document.getElementById("log");
    log.checked = state.log;
    log.addEventListener("change", () => {
      state.log = log.checked;
      if (state.data) charts();
    });
  }

  function poll(url, interval) {
    const status = document.getElementById("status");
    const refresh = () => fetch(url, {cache: "no-store"})
      .then((response) => {
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        return response.json();
      })
      .then((data) => {
        draw(data);
        status.textContent = "updated " + new Date().toLocaleTimeString();
      })
      .catch((error) => { status.textContent = `could not update (${error.message}); retrying`; });
    refresh();
    setInterval(refresh, interval);
  }

  controls();
  const url = document.body.dataset.poll;
  if (url) poll(url, +document.body.dataset.interval);
  else draw(JSON.parse(document.getElementById("dashboard-data").textContent));
})();
