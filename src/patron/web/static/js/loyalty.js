// Loyalty pages: the report's charts ([data-loyalty-chart], Plotly with the shared theme).
(function () {
  "use strict";

  var theme = window.PatronChartTheme;

  var FIGURES = {
    monthly: function (d) {
      var layout = theme.baseLayout();
      layout.barmode = "group";
      layout.showlegend = true;
      layout.legend = { orientation: "h", x: 0, y: 1.14 };
      layout.margin.t = 28;
      layout.yaxis.tickformat = ",d";
      var series = [["Earned", d.earned, theme.GREEN], ["Redeemed", d.redeemed, theme.ACCENT], ["Expired", d.expired, theme.ORANGE]];
      return {
        traces: series.map(function (s) {
          return { type: "bar", name: s[0], x: d.x, y: s[1], marker: { color: s[2] },
                   hovertemplate: "%{x}<br>%{y:,d} points<extra>" + s[0] + "</extra>" };
        }),
        layout: layout,
      };
    },
    tiers: function (d) {
      var layout = theme.baseLayout();
      layout.yaxis.tickformat = ",d";
      if (Math.max.apply(null, d.y.concat([0])) < 8) layout.yaxis.dtick = 1; // whole members
      return {
        traces: [{ type: "bar", x: d.x, y: d.y, marker: { color: theme.PALETTE },
                   hovertemplate: "%{x}<br>%{y:,d} members<extra></extra>" }],
        layout: layout,
      };
    },
  };

  theme.draw("[data-loyalty-chart]", theme.byKind(FIGURES));
})();
