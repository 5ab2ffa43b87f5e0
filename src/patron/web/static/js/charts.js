// Draws every [data-chart] container with Plotly from the JSON the server put in the page.
(function () {
  "use strict";
  if (typeof window.Plotly === "undefined") return; // the data tables below each chart still work

  var theme = window.PatronChartTheme;
  var ACCENT = theme.ACCENT;
  var PALETTE = theme.PALETTE;
  var baseLayout = theme.baseLayout;

  function figure(data) {
    var layout = baseLayout();
    if (data.type === "bar") {
      layout.yaxis.tickformat = ",.0f";
      return {
        traces: [{ type: "bar", x: data.x, y: data.y, marker: { color: ACCENT }, name: data.y_title,
                   hovertemplate: "%{x}<br>%{y:,.2f}<extra></extra>" }],
        layout: layout,
      };
    }
    if (data.type === "line") {
      layout.yaxis.tickformat = ",d";
      layout.xaxis.dtick = 2; // every other month: the half-width chart has no room for twelve labels
      layout.xaxis.tickangle = 0;
      return {
        traces: [{ type: "scatter", mode: "lines+markers", x: data.x, y: data.y, name: data.y_title,
                   line: { color: "#12b886", width: 2.5 },
                   marker: { size: 6 }, cliponaxis: false, fill: "tozeroy", fillcolor: "rgba(18,184,134,0.08)",
                   hovertemplate: "%{x}<br>%{y:,d} new<extra></extra>" }],
        layout: layout,
      };
    }
    // pie: orders by channel, as a donut with the legend beside it
    layout.margin = { l: 8, r: 8, t: 8, b: 8 };
    layout.showlegend = true;
    layout.legend = { orientation: "v", x: 1, y: 0.5 };
    return {
      traces: [{ type: "pie", labels: data.labels, values: data.values, hole: 0.55, sort: false,
                 marker: { colors: PALETTE }, textinfo: "percent", customdata: data.revenue,
                 hovertemplate: "%{label}<br>%{value:,d} orders · %{customdata:,.2f}<extra></extra>" }],
      layout: layout,
    };
  }

  theme.draw("[data-chart]", figure);
})();
