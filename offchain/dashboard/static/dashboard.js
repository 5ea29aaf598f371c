// The dashboard's one script: draws every figure the page embeds (or fetches) with the locally served plotly.js.
(function () {
  "use strict";
  // The tool bar only on the map, where zooming in on a region is the point.
  function config(el) {
    return { responsive: true, displaylogo: false, displayModeBar: el.id === "map" ? "hover" : false };
  }

  function draw(el, fig) {
    window.Plotly.newPlot(el, fig.data, fig.layout, config(el)).then(function () {
      if (el.id === "map") {
        el.on("plotly_click", function (ev) {
          var p = ev.points && ev.points[0];
          if (p && p.customdata !== undefined) { window.location.href = "/tracks/" + p.customdata; }
        });
      }
      el.setAttribute("data-drawn", "1");
    });
  }

  document.querySelectorAll(".figure").forEach(function (el) {
    var src = el.getAttribute("data-src");
    if (src) {
      fetch(src).then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      }).then(function (fig) { draw(el, fig); }).catch(function (e) {
        el.textContent = "The figure could not be loaded: " + e.message;
        el.setAttribute("data-drawn", "error");
      });
      return;
    }
    var data = el.querySelector("script[type='application/json']");
    if (data) { draw(el, JSON.parse(data.textContent)); }
  });
})();
