// Dashboards: draw the server-built Vega-Lite specs, keep filters in the URL and in the sidebar links.
// No inline scripts and no eval: vega-embed runs with its AST interpreter (ast: true), so the page works
// under the app's Content-Security-Policy (script-src 'self').
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  var settings = null;
  var views = new Map(); // container element -> vega view

  function readSettings() {
    if (settings) return settings;
    var el = document.getElementById("vega-settings");
    try { settings = el ? JSON.parse(el.textContent) : {}; } catch (e) { settings = {}; }
    return settings;
  }

  function isDark() {
    var t = document.documentElement.getAttribute("data-theme");
    if (t === "dark") return true;
    if (t === "light") return false;
    return !!(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
  }

  function finalize(el) {
    var view = views.get(el);
    if (view) {
      try { view.finalize(); } catch (e) { /* already gone */ }
      views.delete(el);
    }
  }

  function fail(el, err) {
    el.classList.remove("is-loading");
    el.classList.add("chart-error");
    var p = document.createElement("p");
    p.className = "alert alert-error";
    p.setAttribute("role", "alert");
    p.textContent = "No se pudo dibujar este gráfico. Sus cifras están en «Ver tabla».";
    el.replaceChildren(p);
    if (window.console && err) console.warn("vega:", err);
  }

  function draw(el) {
    var script = el.parentNode && el.parentNode.querySelector("script.chart-spec");
    if (!script) return;
    if (typeof window.vegaEmbed !== "function") { fail(el, "vegaEmbed no disponible"); return; }
    var spec;
    try { spec = JSON.parse(script.textContent); } catch (e) { fail(el, e); return; }
    var s = readSettings();
    var dark = isDark();
    finalize(el);
    el.classList.add("is-loading");
    var config = dark ? s.dark : s.light;
    window.vegaEmbed(el, spec, {
      renderer: "svg",
      actions: false,
      ast: true,                       // CSP-safe expression interpreter, no eval / new Function
      logLevel: 1,                     // vega.Error
      config: config,
      formatLocale: s.formatLocale,
      timeFormatLocale: s.timeFormatLocale,
      tooltip: { theme: dark ? "dark" : "light" },
      i18n: { PNG_ACTION: "Guardar PNG", SVG_ACTION: "Guardar SVG" }
    }).then(function (res) {
      views.set(el, res.view);
      el.classList.remove("is-loading");
      el.setAttribute("data-rendered", "1");
      var svg = el.querySelector("svg");
      if (svg && spec.description) {
        svg.setAttribute("role", "img");
        svg.setAttribute("aria-label", spec.description);
      }
    }).catch(function (err) { fail(el, err); });
  }

  function drawAll(root, force) {
    (root || document).querySelectorAll(".vega-chart").forEach(function (el) {
      if (force || !el.hasAttribute("data-rendered")) draw(el);
    });
  }

  function cleanup(root) {
    views.forEach(function (_view, el) {
      if (!document.body.contains(el) || (root && root.contains(el))) finalize(el);
    });
  }

  // --- filters travel with the user: sidebar links carry the current selection --------------
  var PAGE_ONLY = ["q", "orden", "dir", "pagina", "top", "rbd"];

  function currentQuery() {
    var t = document.getElementById("tablero");
    if (t && t.hasAttribute("data-query")) return t.getAttribute("data-query");
    var params = new URLSearchParams(window.location.search);
    PAGE_ONLY.forEach(function (k) { params.delete(k); });
    return params.toString();
  }

  function rewriteNav() {
    var q = currentQuery();
    document.querySelectorAll("a[data-nav]").forEach(function (a) {
      var base = a.getAttribute("data-base") || a.getAttribute("href").split("?")[0];
      a.setAttribute("data-base", base);
      a.setAttribute("href", q ? base + "?" + q : base);
    });
  }

  // --- requests: clean URLs (no empty parameters; "desde/hasta" become "anio") ---------------
  document.addEventListener("htmx:configRequest", function (ev) {
    if (ev.detail.verb !== "get") return;
    var p = ev.detail.parameters;
    var get = function (k) { return p.get ? p.get(k) : p[k]; };
    var del = function (k) { if (p.delete) p.delete(k); else delete p[k]; };
    var set = function (k, v) { if (p.set) p.set(k, v); else p[k] = v; };
    var desde = get("desde"), hasta = get("hasta");
    if (desde || hasta) {
      var a = desde || hasta, b = hasta || desde;
      if (+a > +b) { var t = a; a = b; b = t; }
      set("anio", a === b ? a : a + "-" + b);
      del("desde"); del("hasta");
    }
    var keys = p.keys ? Array.from(p.keys()) : Object.keys(p);
    keys.forEach(function (k) {
      var v = get(k);
      if (v === "" || v === null || v === undefined) del(k);
    });
    if (get("pagina") === "1") del("pagina");
  });

  document.addEventListener("htmx:beforeSwap", function (ev) {
    if (ev.detail.target) cleanup(ev.detail.target);
  });
  document.addEventListener("htmx:afterSettle", function (ev) {
    drawAll(document, false);
    rewriteNav();
  });
  document.addEventListener("htmx:historyRestore", function () {
    cleanup();
    drawAll(document, true);
    rewriteNav();
  });
  document.addEventListener("htmx:pushedIntoHistory", rewriteNav);
  document.addEventListener("emtp:theme", function () { drawAll(document, true); });
  if (window.matchMedia) {
    var mq = window.matchMedia("(prefers-color-scheme: dark)");
    var onChange = function () {
      if (document.documentElement.getAttribute("data-theme") === "auto") drawAll(document, true);
    };
    if (mq.addEventListener) mq.addEventListener("change", onChange);
  }

  function start() {
    drawAll(document);
    rewriteNav();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
