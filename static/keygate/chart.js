// Usage charts: stacked SVG bars per day, one colour per model. No dependencies, no inline
// styles (CSP): colours come from the .swatch-N classes in app.css. The data is read from
// <script type="application/json" id="usage-data"> (Django's json_script); each
// <div class="chart-canvas" data-series="requests|tokens"> gets one chart. The drawing is as
// wide as its container in CSS pixels (redrawn on resize), so axis text stays 12 px on a
// phone instead of shrinking with a fixed viewBox; ticks are round numbers (1, 2, 5 × 10^n).
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var H = 220, LEFT = 48, RIGHT = 8, TOP = 10, BOTTOM = 24, COLOURS = 8, TICKS = 4;

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }

  // The smallest round step (1, 2 or 5 × 10^n, at least 1) that covers ``max`` in TICKS steps.
  function niceStep(max) {
    var rough = Math.max(max / TICKS, 1);
    var power = Math.pow(10, Math.floor(Math.log10(rough)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * power >= rough) { return steps[i] * power; }
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
    var W = Math.max(280, Math.round(container.clientWidth || 640));
    var step = niceStep(max), ticks = Math.ceil(max / step), top = step * ticks;
    var plotW = W - LEFT - RIGHT, plotH = H - TOP - BOTTOM;
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, "aria-hidden": "true", focusable: "false" }, container);
    for (var g = 0; g <= ticks; g++) {
      var y = TOP + plotH - (plotH * g) / ticks;
      el("line", { x1: LEFT, x2: W - RIGHT, y1: y, y2: y, "class": "axis" }, svg);
      el("text", { x: LEFT - 6, y: y + 4, "text-anchor": "end" }, svg).textContent = short(step * g);
    }
    var slot = plotW / days.length, barW = Math.max(1, slot * 0.7);
    // About one date label per 56 px, so labels never overlap on a narrow screen.
    var labelEvery = Math.max(1, Math.ceil(days.length / Math.max(2, Math.floor(plotW / 56))));
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
    var containers = document.querySelectorAll(".chart-canvas[data-series]");
    function drawAll() {
      containers.forEach(function (container) { draw(container, data, container.dataset.series); });
    }
    drawAll();
    var width = window.innerWidth, timer = null;
    window.addEventListener("resize", function () {
      if (window.innerWidth === width) { return; }
      width = window.innerWidth;
      clearTimeout(timer);
      timer = setTimeout(drawAll, 150);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
