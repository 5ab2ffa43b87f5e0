// Draws the analytics charts ([data-analytics-chart]) with Plotly from the JSON the server put in the page.
(function () {
  "use strict";
  if (typeof window.Plotly === "undefined") return; // the data tables below each chart still work

  var theme = window.PatronChartTheme;
  var ACCENT = theme.ACCENT;
  var GREEN = theme.GREEN;
  var ORANGE = theme.ORANGE;
  var GREY = theme.GREY;

  function baseLayout() {
    return theme.baseLayout(56); // room for a second y axis on the right
  }

  function legendOnTop(layout) {
    layout.showlegend = true;
    layout.legend = { orientation: "h", x: 0, y: 1.12 };
    layout.margin.t = 28;
  }

  var FIGURES = {
    segments: function (d) {
      var layout = baseLayout();
      legendOnTop(layout);
      layout.xaxis.tickangle = -30;
      layout.yaxis.title = { text: "Customers" };
      layout.yaxis.tickformat = ",d";
      layout.yaxis2 = { overlaying: "y", side: "right", rangemode: "tozero", showgrid: false, tickformat: ",.0f",
                        title: { text: "CLV" }, automargin: true };
      return {
        traces: [
          { type: "bar", name: "Customers", x: d.labels, y: d.customers, marker: { color: ACCENT },
            hovertemplate: "%{x}<br>%{y:,d} customers<extra></extra>" },
          { type: "scatter", mode: "markers", name: "Total CLV", x: d.labels, y: d.clv, yaxis: "y2",
            marker: { color: ORANGE, size: 10 }, hovertemplate: "%{x}<br>CLV %{y:,.0f}<extra></extra>" },
        ],
        layout: layout,
      };
    },
    channels: function (d) {
      var layout = baseLayout();
      legendOnTop(layout);
      layout.barmode = "group";
      layout.yaxis.tickformat = ",.0f";
      var ratio = d.ratio.map(function (r) { return r === null ? "no ratio" : "CLV:CAC " + r.toFixed(1); });
      return {
        traces: [
          { type: "bar", name: "Average CLV", x: d.labels, y: d.clv, marker: { color: GREEN }, text: ratio,
            textposition: "none", hovertemplate: "%{x}<br>CLV %{y:,.2f}<br>%{text}<extra></extra>" },
          { type: "bar", name: "Average acquisition cost", x: d.labels, y: d.cac, marker: { color: ORANGE },
            hovertemplate: "%{x}<br>CAC %{y:,.2f}<extra></extra>" },
        ],
        layout: layout,
      };
    },
    heatmap: function (d) {
      var layout = baseLayout();
      layout.margin = { l: 80, r: 16, t: 8, b: 40 };
      layout.xaxis.title = { text: "Months since first purchase" };
      layout.xaxis.dtick = 1;
      layout.yaxis = { type: "category", automargin: true, autorange: "reversed" };
      var text = d.z.map(function (row, i) {
        return row.map(function () { return d.sizes[i]; });
      });
      return {
        traces: [{ type: "heatmap", x: d.x.map(String), y: d.y, z: d.z, zmin: 0, zmax: 100, customdata: text,
                   colorscale: [[0, "#f8f9fa"], [0.3, "#a5d8ff"], [1, ACCENT]], hoverongaps: false,
                   colorbar: { title: { text: "%" }, ticksuffix: "%", thickness: 12 },
                   hovertemplate: "%{y} cohort (%{customdata:,d})<br>month %{x}: %{z:.1f}% bought<extra></extra>" }],
        layout: layout,
      };
    },
    trend: function (d) {
      var layout = baseLayout();
      layout.yaxis.tickformat = ",.0f";
      var colours = d.role.map(function (r) { return r === "recent" ? ACCENT : r === "earlier" ? ORANGE : GREY; });
      return {
        traces: [{ type: "bar", x: d.x, y: d.y, marker: { color: colours }, customdata: d.role,
                   hovertemplate: "%{x}<br>%{y:,.2f}<extra></extra>" }],
        layout: layout,
      };
    },
    history: function (d) {
      var layout = baseLayout();
      legendOnTop(layout);
      layout.yaxis.title = { text: "CLV" };
      layout.yaxis.tickformat = ",.0f";
      layout.yaxis2 = { overlaying: "y", side: "right", range: [0, 1], showgrid: false, title: { text: "P(alive)" },
                        automargin: true };
      return {
        traces: [
          { type: "scatter", mode: "lines+markers", name: "CLV", x: d.x, y: d.clv, line: { color: GREEN, width: 2.5 },
            hovertemplate: "%{x}<br>CLV %{y:,.2f}<extra></extra>" },
          { type: "scatter", mode: "lines+markers", name: "P(alive)", x: d.x, y: d.p_alive, yaxis: "y2",
            line: { color: ACCENT, width: 2, dash: "dot" }, hovertemplate: "%{x}<br>P(alive) %{y:.2f}<extra></extra>" },
        ],
        layout: layout,
      };
    },
  };

  theme.draw("[data-analytics-chart]", theme.byKind(FIGURES));
})();
