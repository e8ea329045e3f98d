// Apply the saved theme before the first paint (no flash of the wrong theme).
(function () {
  try {
    var t = localStorage.getItem("emtp-theme");
    if (t === "light" || t === "dark") document.documentElement.setAttribute("data-theme", t);
  } catch (e) { /* storage disabled */ }
})();
