// Small enhancements for every dashboard page; each one is optional (the pages work without).
// - The theme toggle (aria-pressed): saves "dark" or "light"; theme.js applies it on load.
// - Times: <time datetime data-local="minutes|seconds|date|title"> are rewritten in the
//   browser's time zone, with the server's rendering (UTC by default) kept in the title.
// - "Select all" for the key list's bulk actions.
(function () {
  "use strict";

  function isDark() {
    var theme = document.documentElement.dataset.theme;
    if (theme) { return theme === "dark"; }
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  }

  function initTheme() {
    var button = document.querySelector("[data-theme-toggle]");
    if (!button) { return; }
    button.hidden = false;
    button.setAttribute("aria-pressed", String(isDark()));
    button.addEventListener("click", function () {
      var next = isDark() ? "light" : "dark";
      document.documentElement.dataset.theme = next;
      try { window.localStorage.setItem("keygate-theme", next); } catch (error) { /* not saved */ }
      button.setAttribute("aria-pressed", String(next === "dark"));
    });
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function zoneName(date) {
    try {
      var parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(date);
      for (var i = 0; i < parts.length; i++) { if (parts[i].type === "timeZoneName") { return parts[i].value; } }
    } catch (error) { /* old browser */ }
    return "";
  }

  function localText(date, style) {
    var day = date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate());
    if (style === "date") { return day; }
    var time = pad(date.getHours()) + ":" + pad(date.getMinutes());
    if (style === "seconds") { time += ":" + pad(date.getSeconds()); }
    return day + " " + time + " " + zoneName(date);
  }

  function initTimes() {
    var browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    document.querySelectorAll("time[data-local]").forEach(function (node) {
      var date = new Date(node.getAttribute("datetime"));
      if (isNaN(date.getTime())) { return; }
      var style = node.dataset.local, server = node.getAttribute("title") || "";
      var local = localText(date, style === "title" ? "minutes" : style);
      if (style === "title") {
        node.title = local + (server && server !== local ? " (" + server + ")" : "");
      } else if (style === "date") {
        node.title = localText(date, "minutes") + (server ? " (" + server + ")" : "");
        node.textContent = local;
      } else if (local !== server && browserZone !== "UTC") {
        node.textContent = local;
        node.title = server;
      }
    });
  }

  function initSelectAll() {
    var all = document.querySelector("[data-select-all]");
    if (!all) { return; }
    all.hidden = false;
    var boxes = document.querySelectorAll("input[name='key'][form='bulk'], #bulk input[name='key']");
    all.addEventListener("change", function () {
      boxes.forEach(function (box) { box.checked = all.checked; });
    });
  }

  function init() { initTheme(); initTimes(); initSelectAll(); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
