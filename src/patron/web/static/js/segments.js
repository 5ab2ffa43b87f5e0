// Segment pages: the rule builder with its live count, and the report charts ([data-segment-chart], Plotly).
(function () {
  "use strict";

  // ------------------------------------------------------------------ charts

  var theme = window.PatronChartTheme;
  var ACCENT = theme.ACCENT;
  var GREEN = theme.GREEN;
  var ORANGE = theme.ORANGE;
  var PALETTE = theme.PALETTE;
  var BAND_COLOURS = { Low: GREEN, Medium: "#fab005", High: ORANGE, Lost: "#fa5252" };
  var baseLayout = theme.baseLayout;

  var FIGURES = {
    monthly: function (d) {
      var layout = baseLayout();
      layout.yaxis.tickformat = ",.0f";
      return {
        traces: [{ type: "bar", x: d.x, y: d.revenue, customdata: d.orders, marker: { color: ACCENT },
                   hovertemplate: "%{x}<br>%{y:,.2f} · %{customdata:,d} orders<extra></extra>" }],
        layout: layout,
      };
    },
    churn: function (d) {
      var layout = baseLayout();
      layout.yaxis.tickformat = ",d";
      if (Math.max.apply(null, d.y.concat([0])) < 8) layout.yaxis.dtick = 1; // whole members, not 0.2 steps
      return {
        traces: [{ type: "bar", x: d.x, y: d.y, marker: { color: d.x.map(function (b) { return BAND_COLOURS[b] || ACCENT; }) },
                   hovertemplate: "%{x}<br>%{y:,d} members<extra></extra>" }],
        layout: layout,
      };
    },
    rfm: function (d) {
      var layout = baseLayout();
      layout.margin = { l: 8, r: 8, t: 8, b: 8 };
      layout.showlegend = true;
      layout.legend = { orientation: "v", x: 1, y: 0.5 };
      return {
        traces: [{ type: "pie", labels: d.labels, values: d.values, hole: 0.55, sort: false,
                   marker: { colors: PALETTE }, textinfo: "percent",
                   hovertemplate: "%{label}<br>%{value:,d} members<extra></extra>" }],
        layout: layout,
      };
    },
    compare: function (d) {
      var layout = baseLayout();
      layout.barmode = "group";
      layout.showlegend = true;
      layout.legend = { orientation: "h", x: 0, y: 1.12 };
      layout.margin.t = 28;
      layout.yaxis.tickformat = ",.0f";
      return {
        traces: d.series.map(function (ys, i) {
          return { type: "bar", name: d.names[i], x: d.x, y: ys, marker: { color: i ? ORANGE : ACCENT },
                   hovertemplate: "%{x}<br>%{y:,.2f}<extra>" + d.names[i].replace(/</g, "&lt;") + "</extra>" };
        }),
        layout: layout,
      };
    },
  };

  theme.draw("[data-segment-chart]", theme.byKind(FIGURES));

  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  // ------------------------------------------------------------------ rule builder

  var root = document.getElementById("rule-builder");
  var dataEl = document.getElementById("builder-data");
  if (!root || !dataEl) return;
  var META = JSON.parse(dataEl.textContent);
  var FIELDS = {};
  META.fields.forEach(function (f) { FIELDS[f.name] = f; });
  var NO_VALUE = ["is_empty", "is_not_empty", "is_current_month"];
  var DAYS = ["in_last_days", "not_in_last_days"];
  var form = document.getElementById("segment-form");
  var ruleInput = document.getElementById("f-rule");
  var locked = root.getAttribute("data-locked") === "true";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function options(select, pairs, selected) {
    pairs.forEach(function (p) {
      var o = el("option", { value: String(p[0]), text: p[1] });
      if (String(p[0]) === String(selected)) o.selected = true;
      select.appendChild(o);
    });
    return select;
  }

  // --- the rule JSON <-> the builder's tree of nodes

  function fromRule(rule) {
    if (rule === null || typeof rule !== "object" || Array.isArray(rule)) throw new Error("not a condition");
    var n;
    if ("not" in rule) { n = fromRule(rule.not); n.neg = !n.neg; return n; }
    if ("all" in rule || "any" in rule) {
      var mode = "all" in rule ? "all" : "any";
      if (!Array.isArray(rule[mode])) throw new Error("a group takes a list");
      return { t: "group", mode: mode, neg: false, children: rule[mode].map(fromRule) };
    }
    if ("field" in rule) return { t: "field", field: rule.field, op: rule.op, value: rule.value, neg: false };
    if ("purchases" in rule) {
      return { t: "purchases", filters: Object.assign({}, rule.purchases), metric: rule.metric, op: rule.op,
               value: rule.value, neg: false };
    }
    if ("consent" in rule) return { t: "consent", channel: rule.consent.channel, purpose: rule.consent.purpose, neg: false };
    if ("segment" in rule) return { t: "segment", id: rule.segment, neg: false };
    throw new Error("unknown condition");
  }

  function toRule(n) {
    var r;
    if (n.t === "group") {
      r = {};
      r[n.mode] = n.children.map(toRule);
    } else if (n.t === "field") {
      r = { field: n.field, op: n.op };
      if (NO_VALUE.indexOf(n.op) < 0) r.value = n.value === undefined ? null : n.value;
    } else if (n.t === "purchases") {
      var filters = {};
      Object.keys(n.filters).forEach(function (k) {
        if (n.filters[k] !== null && n.filters[k] !== "" && n.filters[k] !== undefined) filters[k] = n.filters[k];
      });
      r = { purchases: filters, metric: n.metric, op: n.op, value: n.value === undefined ? null : n.value };
    } else if (n.t === "consent") {
      r = { consent: { channel: n.channel, purpose: n.purpose } };
    } else {
      r = { segment: n.id };
    }
    return n.neg ? { not: r } : r;
  }

  function asRootGroup(n) {
    return n.t === "group" && !n.neg ? n : { t: "group", mode: "all", neg: false, children: [n] };
  }

  function firstChoiceValue(field, op) {
    if (NO_VALUE.indexOf(op) >= 0) return undefined;
    if (op === "in" || op === "not_in") return [];
    if (op === "between") return [null, null];
    if (DAYS.indexOf(op) >= 0) return 30;
    if (field.type === "enum") return field.choices[0];
    if (field.type === "boolean") return true;
    if (field.type === "month") return new Date().getMonth() + 1;
    return null;
  }

  function newNode(kind) {
    if (kind === "group") return { t: "group", mode: "any", neg: false, children: [newNode("field")] };
    if (kind === "purchases") {
      return { t: "purchases", filters: { within_days: 90 }, metric: "count", op: "gte", value: 1, neg: false };
    }
    if (kind === "consent") {
      return { t: "consent", channel: META.contact_channels[0][0], purpose: META.purposes[0][0], neg: false };
    }
    if (kind === "segment") return { t: "segment", id: META.segments.length ? META.segments[0][0] : null, neg: false };
    var field = META.fields[0];
    return { t: "field", field: field.name, op: field.ops[0], value: firstChoiceValue(field, field.ops[0]), neg: false };
  }

  // --- drawing

  var state = { t: "group", mode: "all", neg: false, children: [] };

  function parseScalar(type, raw) {
    if (raw === "" || raw === null) return null;
    if (type === "integer" || type === "month") return /^-?\d+$/.test(raw.trim()) ? parseInt(raw, 10) : raw;
    if (type === "number") return isFinite(Number(raw)) ? Number(raw) : raw;
    return raw;
  }

  function inputType(type) {
    if (type === "number" || type === "integer") return "number";
    if (type === "date" || type === "datetime") return "date";
    return "text";
  }

  function scalarInput(type, value, onValue, name, choices) {
    var input;
    if (type === "enum" || type === "boolean" || type === "month") {
      input = el("select", { "aria-label": name });
      var pairs = type === "enum" ? choices.map(function (c) { return [c, c]; })
        : type === "boolean" ? [["true", "yes"], ["false", "no"]]
        : META.months.map(function (m, i) { return [i + 1, m]; });
      options(input, pairs, value);
      input.addEventListener("change", function () {
        var v = input.value;
        onValue(type === "boolean" ? v === "true" : type === "month" ? parseInt(v, 10) : v);
      });
      return input;
    }
    input = el("input", { type: inputType(type), "aria-label": name });
    if (type === "number") input.setAttribute("step", "any");
    if (value !== null && value !== undefined) input.value = String(value);
    input.addEventListener("input", function () { onValue(parseScalar(type, input.value)); });
    return input;
  }

  function valueInputs(field, n) {
    var op = n.op;
    var box = el("span", { class: "rule-value" });
    if (NO_VALUE.indexOf(op) >= 0) return box;
    if (DAYS.indexOf(op) >= 0) {
      box.appendChild(scalarInput("integer", n.value, function (v) { n.value = v; changed(); }, "Days"));
      box.appendChild(el("span", { class: "muted", text: "days" }));
      return box;
    }
    if (op === "between") {
      if (!Array.isArray(n.value)) n.value = [null, null];
      [0, 1].forEach(function (i) {
        if (i) box.appendChild(el("span", { class: "muted", text: "and" }));
        box.appendChild(scalarInput(field.type, n.value[i], function (v) { n.value[i] = v; changed(); },
                                    i ? "To" : "From", field.choices));
      });
      return box;
    }
    if (op === "in" || op === "not_in") {
      if (!Array.isArray(n.value)) n.value = [];
      if (field.type === "enum" || field.type === "month") {
        var multi = el("select", { multiple: "multiple", "aria-label": "Values", size: "3" });
        var pairs = field.type === "enum" ? field.choices.map(function (c) { return [c, c]; })
          : META.months.map(function (m, i) { return [i + 1, m]; });
        pairs.forEach(function (p) {
          var o = el("option", { value: String(p[0]), text: p[1] });
          o.selected = n.value.map(String).indexOf(String(p[0])) >= 0;
          multi.appendChild(o);
        });
        multi.addEventListener("change", function () {
          n.value = Array.prototype.filter.call(multi.options, function (o) { return o.selected; })
            .map(function (o) { return field.type === "month" ? parseInt(o.value, 10) : o.value; });
          changed();
        });
        box.appendChild(multi);
        return box;
      }
      var list = el("input", { type: "text", "aria-label": "Values", placeholder: "comma-separated" });
      list.value = n.value.join(", ");
      list.addEventListener("input", function () {
        n.value = list.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean)
          .map(function (s) { return parseScalar(field.type, s); });
        changed();
      });
      box.appendChild(list);
      return box;
    }
    box.appendChild(scalarInput(field.type, n.value, function (v) { n.value = v; changed(); }, "Value", field.choices));
    return box;
  }

  function notToggle(n, row) {
    var box = el("input", { type: "checkbox", "aria-label": "Not" });
    box.checked = !!n.neg;
    box.addEventListener("change", function () {
      n.neg = box.checked;
      row.classList.toggle("is-negated", n.neg);
      changed();
    });
    return el("label", { class: "rule-not", title: "Match customers for whom this is NOT true" }, [box, el("span", { text: "not" })]);
  }

  function removeButton(parent, n) {
    var b = el("button", { type: "button", class: "btn btn-ghost btn-sm rule-remove", "aria-label": "Remove", text: "✕" });
    b.addEventListener("click", function () {
      parent.children.splice(parent.children.indexOf(n), 1);
      redraw();
    });
    return b;
  }

  function fieldRow(n, row) {
    var field = FIELDS[n.field];
    var picker = el("select", { "aria-label": "Field" });
    if (!field) picker.appendChild(el("option", { value: n.field, text: "unknown: " + n.field }));
    META.groups.forEach(function (g) {
      var og = el("optgroup", { label: g });
      META.fields.forEach(function (f) { if (f.group === g) og.appendChild(el("option", { value: f.name, text: f.label })); });
      if (og.children.length) picker.appendChild(og);
    });
    picker.value = n.field;
    picker.addEventListener("change", function () {
      var f = FIELDS[picker.value];
      n.field = f.name;
      if (f.ops.indexOf(n.op) < 0) n.op = f.ops[0];
      n.value = firstChoiceValue(f, n.op);
      redraw();
    });
    row.appendChild(picker);
    if (!field) return;
    var op = options(el("select", { "aria-label": "Operator" }), field.ops.map(function (o) { return [o, META.ops[o] || o]; }), n.op);
    op.addEventListener("change", function () {
      var before = n.op;
      n.op = op.value;
      var multi = function (o) { return o === "in" || o === "not_in"; };
      if (!(multi(before) && multi(n.op)) && !(DAYS.indexOf(before) >= 0 && DAYS.indexOf(n.op) >= 0) &&
          (before === "between" || n.op === "between" || multi(before) || multi(n.op) ||
           DAYS.indexOf(before) >= 0 || DAYS.indexOf(n.op) >= 0 || NO_VALUE.indexOf(n.op) >= 0 || NO_VALUE.indexOf(before) >= 0)) {
        n.value = firstChoiceValue(field, n.op);
      }
      redraw();
    });
    row.appendChild(op);
    row.appendChild(valueInputs(field, n));
  }

  function purchasesRow(n, row) {
    row.appendChild(el("span", { class: "rule-kind", text: "Purchases" }));
    var metric = options(el("select", { "aria-label": "Metric" }), Object.keys(META.metrics).map(function (m) {
      return [m, META.metrics[m]];
    }), n.metric);
    metric.addEventListener("change", function () { n.metric = metric.value; changed(); });
    row.appendChild(metric);
    row.appendChild(el("span", { class: "muted", text: "in the last" }));
    row.appendChild(scalarInput("integer", n.filters.within_days, function (v) { n.filters.within_days = v; changed(); },
                                "Window (days)"));
    row.appendChild(el("span", { class: "muted", text: "days" }));
    var op = options(el("select", { "aria-label": "Operator" }), META.aggregate_ops.map(function (o) {
      return [o, META.ops[o] || o];
    }), n.op);
    op.addEventListener("change", function () {
      var wasBetween = n.op === "between";
      n.op = op.value;
      if (wasBetween !== (n.op === "between")) n.value = n.op === "between" ? [null, null] : null;
      redraw();
    });
    row.appendChild(op);
    if (n.op === "between") {
      if (!Array.isArray(n.value)) n.value = [null, null];
      [0, 1].forEach(function (i) {
        if (i) row.appendChild(el("span", { class: "muted", text: "and" }));
        row.appendChild(scalarInput("number", n.value[i], function (v) { n.value[i] = v; changed(); }, i ? "To" : "From"));
      });
    } else {
      row.appendChild(scalarInput("number", n.value, function (v) { n.value = v; changed(); }, "Value"));
    }
    var more = el("span", { class: "rule-filters" });
    ["category", "brand"].forEach(function (k) {
      var input = el("input", { type: "text", "aria-label": k === "category" ? "Category" : "Brand",
                                placeholder: k === "category" ? "any category" : "any brand" });
      input.value = n.filters[k] || "";
      input.addEventListener("input", function () { n.filters[k] = input.value.trim() || null; changed(); });
      more.appendChild(input);
    });
    var channel = options(el("select", { "aria-label": "Sales channel" }), [["", "any channel"]].concat(META.sales_channels),
                          n.filters.channel || "");
    channel.addEventListener("change", function () { n.filters.channel = channel.value || null; changed(); });
    more.appendChild(channel);
    var fresh = scalarInput("integer", n.filters.new_products_days, function (v) { n.filters.new_products_days = v; changed(); },
                            "New products (days since launch)");
    fresh.setAttribute("placeholder", "new products: days");
    more.appendChild(fresh);
    row.appendChild(more);
  }

  function consentRow(n, row) {
    row.appendChild(el("span", { class: "rule-kind", text: "Consented to" }));
    var purpose = options(el("select", { "aria-label": "Purpose" }), META.purposes, n.purpose);
    purpose.addEventListener("change", function () { n.purpose = purpose.value; changed(); });
    row.appendChild(purpose);
    row.appendChild(el("span", { class: "muted", text: "by" }));
    var channel = options(el("select", { "aria-label": "Channel" }), META.contact_channels, n.channel);
    channel.addEventListener("change", function () { n.channel = channel.value; changed(); });
    row.appendChild(channel);
  }

  function segmentRow(n, row) {
    row.appendChild(el("span", { class: "rule-kind", text: "Member of" }));
    var pairs = META.segments.slice();
    if (n.id !== null && !pairs.some(function (p) { return p[0] === n.id; })) pairs.unshift([n.id, "segment " + n.id]);
    var picker = options(el("select", { "aria-label": "Segment" }), pairs, n.id);
    picker.addEventListener("change", function () { n.id = parseInt(picker.value, 10); changed(); });
    row.appendChild(picker);
  }

  function drawNode(n, parent) {
    if (n.t === "group") return drawGroup(n, parent);
    var row = el("li", { class: "rule-row rule-" + n.t + (n.neg ? " is-negated" : "") });
    row.appendChild(notToggle(n, row));
    if (n.t === "field") fieldRow(n, row);
    else if (n.t === "purchases") purchasesRow(n, row);
    else if (n.t === "consent") consentRow(n, row);
    else segmentRow(n, row);
    row.appendChild(removeButton(parent, n));
    return row;
  }

  function drawGroup(n, parent) {
    var box = el(parent ? "li" : "div", { class: "rule-group is-" + n.mode + (n.neg ? " is-negated" : "") });
    var head = el("div", { class: "rule-head" });
    if (parent) head.appendChild(notToggle(n, box));
    var mode = options(el("select", { "aria-label": "Match" }), [["all", "All of (AND)"], ["any", "Any of (OR)"]], n.mode);
    mode.addEventListener("change", function () {
      n.mode = mode.value;
      box.classList.toggle("is-all", n.mode === "all");
      box.classList.toggle("is-any", n.mode === "any");
      changed();
    });
    head.appendChild(mode);
    head.appendChild(el("span", { class: "muted", text: "these conditions" }));
    if (parent) head.appendChild(removeButton(parent, n));
    box.appendChild(head);
    var list = el("ul", { class: "rule-children" });
    n.children.forEach(function (c) { list.appendChild(drawNode(c, n)); });
    box.appendChild(list);
    var add = el("div", { class: "rule-add" });
    [["field", "+ Condition"], ["purchases", "+ Purchases"], ["consent", "+ Consent"], ["segment", "+ In segment"],
     ["group", "+ Group"]].forEach(function (pair) {
      if (pair[0] === "segment" && !META.segments.length) return;
      var b = el("button", { type: "button", class: "btn btn-secondary btn-sm", text: pair[1] });
      b.addEventListener("click", function () { n.children.push(newNode(pair[0])); redraw(); });
      add.appendChild(b);
    });
    box.appendChild(add);
    return box;
  }

  function redraw() {
    root.textContent = "";
    root.appendChild(drawGroup(state, null));
    changed();
  }

  // --- the live count

  var countEl = document.getElementById("preview-count");
  var errorEl = document.getElementById("preview-error");
  var warningsEl = document.getElementById("preview-warnings");
  var sampleBody = document.querySelector("#preview-sample tbody");
  var timer = null;
  var sent = 0;

  function currentRule() {
    // A root "all" around one condition is the builder's frame, not part of the rule.
    var only = state.mode === "all" && state.children.length === 1;
    return JSON.stringify(only ? toRule(state.children[0]) : toRule(state));
  }

  function changed() {
    if (!locked) ruleInput.value = state.children.length ? currentRule() : "";
    clearTimeout(timer);
    timer = setTimeout(fetchPreview, 300);
  }

  function showError(message) {
    errorEl.textContent = message;
    errorEl.hidden = !message;
  }

  function fetchPreview() {
    if (!state.children.length) {
      countEl.textContent = "Add a condition to see who matches.";
      showError("");
      warningsEl.textContent = "";
      sampleBody.textContent = "";
      return;
    }
    var mine = ++sent;
    var body = new URLSearchParams();
    body.set("csrf_token", form.querySelector("input[name=csrf_token]").value);
    body.set("rule", ruleInput.value);
    countEl.classList.add("is-loading");
    fetch("/segments/preview.json", { method: "POST", body: body, credentials: "same-origin", cache: "no-store",
                                      headers: { Accept: "application/json" } })
      .then(function (r) {
        var type = r.headers.get("content-type") || "";
        if (type.indexOf("application/json") < 0) throw new Error("The count could not be fetched (" + r.status + "). Reload the page.");
        return r.json();
      })
      .then(function (data) {
        if (mine !== sent) return; // a newer edit is on its way
        countEl.classList.remove("is-loading");
        warningsEl.textContent = "";
        sampleBody.textContent = "";
        if (data.error) {
          countEl.textContent = "—";
          showError(data.error);
          return;
        }
        showError("");
        countEl.textContent = data.text;
        data.warnings.forEach(function (w) { warningsEl.appendChild(el("li", { text: w })); });
        data.sample.forEach(function (c) {
          var link = el("a", { href: "/customers/" + c.id, text: c.name || c.email || "Customer " + c.id });
          sampleBody.appendChild(el("tr", {}, [el("td", {}, [link]),
                                               el("td", { text: [c.city, c.country].filter(Boolean).join(", ") || "—" })]));
        });
      })
      .catch(function (err) {
        if (mine !== sent) return;
        countEl.classList.remove("is-loading");
        showError(err.message);
      });
  }

  function load(rule) {
    state = rule === null ? { t: "group", mode: "all", neg: false, children: [] } : asRootGroup(fromRule(rule));
    redraw();
  }

  var initial = null;
  try {
    initial = ruleInput.value.trim() ? JSON.parse(ruleInput.value) : null;
  } catch (e) {
    initial = null;
  }
  try {
    load(initial);
  } catch (e) {
    // A rule the builder cannot draw (sent back with an error): keep the JSON as typed, show it.
    state = { t: "group", mode: "all", neg: false, children: [] };
    root.textContent = "";
    root.appendChild(el("p", { class: "hint", text: "This rule cannot be shown as conditions; edit it as JSON below." }));
    ruleInput.closest("details").open = true;
  }

  if (!locked) {
    ruleInput.addEventListener("change", function () {
      try {
        load(JSON.parse(ruleInput.value));
      } catch (e) {
        showError("The JSON is not a rule the builder can show: " + e.message);
      }
    });
    var examples = document.getElementById("example-select");
    if (examples) {
      examples.addEventListener("change", function () {
        if (examples.value === "") return;
        var ex = META.examples[parseInt(examples.value, 10)];
        load(ex.rule);
        var name = document.getElementById("f-name");
        var description = document.getElementById("f-description");
        var category = document.getElementById("f-category");
        if (name && !name.value) name.value = ex.name;
        if (description && !description.value) description.value = ex.description;
        if (category && !category.value) category.value = ex.kind === "behavioural" ? "behavioural" : ex.kind;
      });
    }
  }
})();
