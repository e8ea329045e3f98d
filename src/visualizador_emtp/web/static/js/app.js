// Small, dependency-free behaviour shared by every page.
(function () {
  "use strict";

  function currentTheme() {
    var t = document.documentElement.getAttribute("data-theme");
    if (t === "light" || t === "dark") return t;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-theme-toggle]");
    if (!btn) return;
    var next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.setAttribute("data-theme", next);
    try { localStorage.setItem("emtp-theme", next); } catch (e) { /* ignore */ }
    document.dispatchEvent(new CustomEvent("emtp:theme", { detail: next }));
  });

  // A failed fragment never leaves a spinner forever: show a plain Spanish message instead.
  function showFragmentError(target, text) {
    if (!target) return;
    var box = document.createElement("div");
    box.className = "alert alert-error";
    box.setAttribute("role", "alert");
    box.textContent = text;
    target.replaceChildren(box);
  }
  // Our 4xx answers (a form with its error, access denied, an invalid filter) are server-rendered,
  // escaped fragments: swap them like any other, so htmx also wires the hx-* attributes inside them
  // (a form shown again with its error must still submit through htmx).
  document.addEventListener("htmx:beforeSwap", function (ev) {
    var xhr = ev.detail.xhr;
    if (xhr && xhr.status >= 400 && xhr.status < 500 && xhr.responseText) {
      ev.detail.shouldSwap = true;
      ev.detail.isError = false;
    }
  });
  document.addEventListener("htmx:responseError", function (ev) {
    var xhr = ev.detail.xhr;
    showFragmentError(ev.detail.target, "No se pudo cargar esta sección (error " + (xhr ? xhr.status : "?") +
      "). Intente nuevamente; si persiste, avise a TI.");
  });
  document.addEventListener("htmx:sendError", function (ev) {
    showFragmentError(ev.detail.target, "No hay conexión con el servidor. Revise su red e intente nuevamente.");
  });
  document.addEventListener("htmx:timeout", function (ev) {
    showFragmentError(ev.detail.target, "El servidor tardó demasiado en responder. Intente nuevamente.");
  });
})();
