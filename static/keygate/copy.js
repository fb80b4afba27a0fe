// Copy buttons: <button data-copy-target="element-id" data-copied-text="Copied">. Copies an
// input's value or an element's text, then shows the (translated) "Copied" feedback on the
// button and in the nearby .copy-feedback live region, so screen readers announce it too.
(function () {
  "use strict";
  function feedback(button, text) {
    var slot = button.parentElement.querySelector(".copy-feedback");
    var original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = text;
    if (slot) { slot.textContent = text; }
    clearTimeout(button._copyTimer);
    button._copyTimer = setTimeout(function () {
      button.textContent = original;
      if (slot) { slot.textContent = ""; }
    }, 2500);
  }
  function selectContents(source) {
    if (typeof source.select === "function") { source.select(); return; }
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  function legacyCopy(source) {
    selectContents(source);
    try { return document.execCommand("copy"); } catch (error) { return false; }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) { return; }
    var source = document.getElementById(button.dataset.copyTarget);
    if (!source) { return; }
    var text = source.value !== undefined ? source.value : source.textContent;
    var copied = button.dataset.copiedText || "Copied";
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { feedback(button, copied); },
        function () { if (legacyCopy(source)) { feedback(button, copied); } }
      );
    } else if (legacyCopy(source)) {
      feedback(button, copied);
    }
  });
})();
