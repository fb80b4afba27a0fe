// Usage charts: stacked SVG bars per day, one colour per model. No dependencies, no inline
// styles (CSP): colours come from the .swatch-N classes in app.css. The data is read from
// <script type="application/json" id="usage-data"> (Django's json_script); each
// <div class="chart-canvas" data-series="requests|tokens"> gets one chart.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var W = 640, H = 220, LEFT = 48, RIGHT = 8, TOP = 10, BOTTOM = 24, COLOURS = 8;

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function niceMax(value) {
    if (value <= 0) { return 1; }
    var power = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * power >= value) { return steps[i] * power; }
    }
    return 10 * power;
  }

  function short(value) {
    if (value >= 1e9) { return (value / 1e9).toFixed(1).replace(/\.0$/, "") + "G"; }
    if (value >= 1e6) { return (value / 1e6).toFixed(1).replace(/\.0$/, "") + "M"; }
    if (value >= 1e3) { return (value / 1e3).toFixed(1).replace(/\.0$/, "") + "k"; }
    return String(Math.round(value));
  }

  function draw(container, data, series) {
    var days = data.days, models = data.models, values = data[series] || {};
    container.textContent = "";
    var totals = days.map(function (_, i) {
      return models.reduce(function (sum, m) { return sum + ((values[m] || [])[i] || 0); }, 0);
    });
    var max = Math.max.apply(null, totals.concat([0]));
    if (max === 0) {
      var empty = document.createElement("p");
      empty.className = "chart-empty";
      empty.textContent = data.labels.empty;
      container.appendChild(empty);
      return;
    }
    var top = niceMax(max), plotW = W - LEFT - RIGHT, plotH = H - TOP - BOTTOM;
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, "aria-hidden": "true", focusable: "false" }, container);
    for (var g = 0; g <= 4; g++) {
      var y = TOP + plotH - (plotH * g) / 4;
      el("line", { x1: LEFT, x2: W - RIGHT, y1: y, y2: y, "class": "axis" }, svg);
      el("text", { x: LEFT - 6, y: y + 4, "text-anchor": "end" }, svg).textContent = short((top * g) / 4);
    }
    var slot = plotW / days.length, barW = Math.max(1, slot * 0.7);
    var labelEvery = Math.ceil(days.length / 8);
    days.forEach(function (day, i) {
      var x = LEFT + i * slot + (slot - barW) / 2, base = TOP + plotH;
      models.forEach(function (model, m) {
        var value = (values[model] || [])[i] || 0;
        if (!value) { return; }
        var h = (plotH * value) / top;
        base -= h;
        var bar = el("rect", { x: x, y: base, width: barW, height: h, "class": "swatch-" + (m % COLOURS) }, svg);
        el("title", {}, bar).textContent = day + " · " + model + ": " + value.toLocaleString();
      });
      if (i % labelEvery === 0) {
        el("text", { x: x + barW / 2, y: H - 6, "text-anchor": "middle" }, svg).textContent = day.slice(5);
      }
    });
    var legend = document.createElement("ul");
    legend.className = "chart-legend";
    models.forEach(function (model, m) {
      var item = document.createElement("li"), swatch = document.createElement("span");
      swatch.className = "swatch swatch-" + (m % COLOURS);
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(model));
      legend.appendChild(item);
    });
    container.appendChild(legend);
  }

  function init() {
    var source = document.getElementById("usage-data");
    if (!source) { return; }
    var data = JSON.parse(source.textContent);
    document.querySelectorAll(".chart-canvas[data-series]").forEach(function (container) {
      draw(container, data, container.dataset.series);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
