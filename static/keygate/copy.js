// Copy buttons: <button data-copy-target="input-id">. Shows "Copied" feedback next to the button.
(function () {
  "use strict";
  function feedback(button, text) {
    var slot = button.parentElement.querySelector(".copy-feedback");
    var original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = text;
    if (slot) { slot.textContent = text; }
    setTimeout(function () { button.textContent = original; if (slot) { slot.textContent = ""; } }, 2000);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) { return; }
    var source = document.getElementById(button.dataset.copyTarget);
    if (!source) { return; }
    var text = source.value !== undefined ? source.value : source.textContent;
    var copied = button.dataset.copiedText || "Copied";
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { feedback(button, copied); },
        function () { source.select(); document.execCommand("copy"); feedback(button, copied); });
    } else {
      source.select();
      document.execCommand("copy");
      feedback(button, copied);
    }
  });
})();
