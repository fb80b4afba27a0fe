// Dark mode: applies the theme saved by the header toggle before the page is painted.
// Without a saved choice, app.css follows prefers-color-scheme. Loaded synchronously in <head>.
(function () {
  "use strict";
  try {
    var saved = window.localStorage.getItem("keygate-theme");
    if (saved === "dark" || saved === "light") { document.documentElement.dataset.theme = saved; }
  } catch (error) { /* storage disabled: follow the system */ }
})();
