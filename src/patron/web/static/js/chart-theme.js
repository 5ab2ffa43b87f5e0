// The look every Plotly chart shares (colours, font, transparent background, axes), loaded before
// the page's own chart script: charts.js, analytics.js and segments.js draw with it.
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
  };
})();
