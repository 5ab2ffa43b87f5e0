// The look every Plotly chart shares (colours, font, transparent background, axes), and the one
// loop that draws a page's charts; loaded before the page's own chart script (charts.js,
// analytics.js, segments.js, loyalty.js), which only says how each kind of figure is built.
(function () {
  "use strict";

  var FONT = { family: "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12, color: "#495057" };

  window.PatronChartTheme = {
    ACCENT: "#3b5bdb",
    GREEN: "#12b886",
    ORANGE: "#f59f00",
    GREY: "#ced4da",
    PALETTE: ["#3b5bdb", "#12b886", "#f59f00", "#e64980", "#7950f2", "#15aabf", "#868e96", "#fab005",
              "#40c057", "#fa5252", "#228be6"],
    FONT: FONT,
    // A fresh layout each call (Plotly keeps and mutates the object it is given).
    baseLayout: function (rightMargin) {
      return {
        font: FONT,
        margin: { l: 56, r: rightMargin === undefined ? 16 : rightMargin, t: 8, b: 40 },
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        xaxis: { type: "category", automargin: true, tickfont: { size: 11 }, showgrid: false },
        yaxis: { automargin: true, gridcolor: "#eef0f3", zerolinecolor: "#dee2e6", rangemode: "tozero" },
        hoverlabel: { font: FONT },
        showlegend: false,
      };
    },
    // Draw every element matching `selector` from the JSON in the element "<its id>-data";
    // `build(data)` returns {traces, layout}, or null for data it does not know.
    draw: function (selector, build) {
      if (typeof window.Plotly === "undefined") return; // the data tables beside the charts still work
      document.querySelectorAll(selector).forEach(function (el) {
        var source = document.getElementById(el.id + "-data");
        if (!source) return;
        var fig = build(JSON.parse(source.textContent));
        if (!fig) return;
        window.Plotly.newPlot(el, fig.traces, fig.layout, { displayModeBar: false, responsive: true });
      });
    },
    // A build function for pages whose data say their figure's kind: FIGURES[data.kind](data).
    byKind: function (figures) {
      return function (data) {
        var build = figures[data.kind];
        return build ? build(data) : null;
      };
    },
  };
})();
