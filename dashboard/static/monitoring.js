// The monitoring page: fetch its JSON every few seconds and redraw the charts and numbers in place (no reload).
"use strict";

(function () {
  const root = document.getElementById("monitoring");
  const url = root.dataset.url;
  const refreshMs = Number(root.dataset.refreshMs) || 5000;
  const layout = (extra) => Object.assign({
    margin: { l: 50, r: 20, t: 10, b: 40 }, height: 280, showlegend: true,
    legend: { orientation: "h", y: -0.2 }, xaxis: { type: "date", title: { text: "UTC" } },
    font: { family: "system-ui, sans-serif", size: 11 },
  }, extra);
  const config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["toImage"] };
  let baselineDrawn = false;
  // Feature -> its training histogram from the profile, drawn alone while the period holds none of its values.
  const histograms = new Map();
  // The legend on top: long bin labels turn sideways and would run into it below.
  const shareLayout = (extra) => layout(Object.assign({ margin: { l: 50, r: 20, t: 30, b: 40 },
    legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" },
    xaxis: { type: "category", automargin: true }, yaxis: { title: { text: "share" }, tickformat: ".0%" } }, extra));

  function text(id, value) { document.getElementById(id).textContent = value; }
  function fixed(value, digits) { return value === null || value === undefined ? "—" : value.toFixed(digits); }
  // Plotly reads "YYYY-MM-DD HH:MM:SS" as given, so charts keep the UTC the control plane answers in.
  function plain(iso) { return iso.replace("T", " ").replace(/(\.\d+)?Z$/, ""); }
  function utc(iso) { return plain(iso) + " UTC"; }

  // The time axis spans the chosen period, not only the windows that hold traffic (one such window alone would be
  // drawn a millisecond wide); a first window may start before the period when its length does not divide it. A
  // tick label at either end that would reach past the plot is left out: it would run into a y axis's labels.
  function periodAxis(data, t) {
    const start = plain(data.period.start);
    const first = t.length && t[0] < start ? t[0] : start;
    return { type: "date", title: { text: "UTC" }, range: [first, plain(data.period.end)],
      ticklabeloverflow: "hide past domain" };
  }

  function drawTraffic(data) {
    const t = data.traffic.t.map(plain);
    // The error rate's axis picks its own round ticks (Plotly's default for an overlaying axis lines them up with
    // the left axis's grid: 0.384, 0.769, …) and takes the room its labels and title need instead of overlapping.
    Plotly.react("chart-traffic", [
      { x: t, y: data.traffic.request_rate, name: "requests/s", type: "scatter", mode: "lines+markers" },
      { x: t, y: data.traffic.error_rate, name: "errors %", type: "scatter", mode: "lines+markers", yaxis: "y2" },
    ], layout({ xaxis: periodAxis(data, t), yaxis: { title: { text: "req/s" }, rangemode: "tozero", automargin: true },
      yaxis2: { title: { text: "errors %" }, overlaying: "y", side: "right", rangemode: "tozero",
        tickmode: "auto", nticks: 6, showgrid: false, automargin: true } }), config);
    Plotly.react("chart-latency", [
      { x: t, y: data.traffic.p50_ms, name: "p50", type: "scatter", mode: "lines+markers" },
      { x: t, y: data.traffic.p99_ms, name: "p99", type: "scatter", mode: "lines+markers" },
    ], layout({ xaxis: periodAxis(data, t), yaxis: { title: { text: "ms" }, rangemode: "tozero" } }), config);
  }

  function drawDrift(data) {
    const t = data.drift.t.map(plain);
    const traces = Object.entries(data.drift.psi).map(([name, values]) => (
      { x: t, y: values, name: name, type: "scatter", mode: "lines+markers" }));
    const threshold = data.thresholds.psi;
    const shapes = t.length ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: threshold, y1: threshold,
      line: { dash: "dash", color: "#b42318", width: 1 } }] : [];
    const annotations = t.length ? [{ xref: "paper", x: 0, y: threshold, text: "drift threshold " + threshold,
      showarrow: false, yanchor: "bottom", xanchor: "left", font: { color: "#b42318" } }] : [];
    Plotly.react("chart-drift", traces, layout({ xaxis: periodAxis(data, t),
      yaxis: { title: { text: "PSI" }, rangemode: "tozero" }, shapes: shapes, annotations: annotations }), config);
  }

  function drawSummary(data) {
    const body = document.querySelector("#drift-table tbody");
    body.replaceChildren();
    const summary = data.summary;
    text("min-rows", String(data.thresholds.min_rows));
    document.getElementById("no-drift").hidden = summary !== null;
    document.getElementById("drift-table").hidden = summary === null;
    if (summary === null) { text("summary-window", ""); text("drifted-share", "—"); return; }
    text("summary-window", "(" + utc(summary.start) + " – " + utc(summary.end) + ")");
    text("drifted-share", summary.too_few_rows ? "too few rows"
      : (100 * summary.drifted_share).toFixed(0) + "%" + (summary.dataset_drift ? " · data set drift" : ""));
    for (const f of summary.features) {
      const row = body.insertRow();
      row.dataset.feature = f.feature;
      if (f.drifted) row.className = "drifted";
      if (f.too_few_rows) row.className = "too-few";
      // Values the training data never had: "–" where the profile lists only its top categories.
      const unseen = f.unseen === null ? "–"
        : f.unseen === 0 ? "0" : f.unseen + " (" + (100 * f.unseen_rate).toFixed(1) + "%)";
      const cells = [f.feature, f.kind, String(f.count), unseen, fixed(f.psi, 4), fixed(f.js, 4), fixed(f.ks, 4),
        fixed(f.chi2_p_value, 4), f.too_few_rows ? "too few rows" : f.drifted ? "drifted" : "ok"];
      cells.forEach((value, i) => {
        const cell = row.insertCell();
        cell.textContent = value;
        if (i >= 2 && i <= 7) cell.className = "num";
        if (i >= 4 && i <= 6) cell.dataset.stat = ["psi", "js", "ks"][i - 4];
      });
    }
  }

  // A feature's figure (caption and chart), made the first time the feature is met.
  function addFigure(feature, kind) {
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    caption.textContent = feature + " (" + kind + ")";
    const chart = document.createElement("div");
    chart.className = "chart";
    chart.id = "baseline-" + feature;
    figure.append(caption, chart);
    document.getElementById("baseline-charts").append(figure);
  }

  // One chart per feature: the period's shares next to the baseline's over the cells the drift statistics were
  // computed on; the profile's training histogram alone while the period holds none of the feature's values.
  function drawFeatures(data) {
    if (!baselineDrawn && data.baseline_histograms !== null) {
      baselineDrawn = true;
      for (const h of data.baseline_histograms) histograms.set(h.feature, h);
    }
    const now = new Map((data.summary === null ? [] : data.summary.features).map((f) => [f.feature, f]));
    const kinds = new Map([...histograms.values()].map((h) => [h.feature, h.kind]));
    for (const f of now.values()) if (!kinds.has(f.feature)) kinds.set(f.feature, f.kind);
    // A feature the profile does not hold (the prediction) goes with the last of its values in the period.
    let regrid = false;
    for (const chart of document.querySelectorAll("#baseline-charts .chart")) {
      if (kinds.has(chart.id.slice("baseline-".length))) continue;
      Plotly.purge(chart);
      chart.parentElement.remove();
      regrid = true;
    }
    // Every figure is in the grid before any is drawn: Plotly sizes a chart to its box when it first draws it.
    for (const [feature, kind] of kinds) {
      if (document.getElementById("baseline-" + feature) === null) { addFigure(feature, kind); regrid = true; }
    }
    for (const [feature] of kinds) {
      const chart = document.getElementById("baseline-" + feature);
      const f = now.get(feature);
      if (f !== undefined) {
        const bars = (name, shares, counts) => ({ x: f.cells, y: shares, customdata: counts, type: "bar", name: name,
          hovertemplate: "%{x}: %{y:.1%} (%{customdata})<extra>" + name + "</extra>" });
        Plotly.react(chart, [bars("training baseline", f.expected_shares, f.expected), bars("now", f.observed_shares, f.observed)],
          shareLayout({ barmode: "group" }), config);
      } else if (chart.data === undefined || chart.data.length > 1) {
        const h = histograms.get(feature);
        Plotly.react(chart, [{ x: h.labels, y: h.shares, type: "bar", name: "training baseline" }], shareLayout(), config);
      }
    }
    // Figures added or removed can change the grid's columns: charts drawn before take their boxes' new size.
    if (regrid) document.querySelectorAll("#baseline-charts .chart").forEach((chart) => Plotly.Plots.resize(chart));
    document.getElementById("no-baseline").hidden = kinds.size > 0;
  }

  async function refresh() {
    try {
      // The training baseline does not change: its histograms are asked for until they have been drawn once.
      const response = await fetch(baselineDrawn ? url + "&baseline=0" : url, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.status === 401) { window.location.assign("/login"); return; }
      const data = await response.json();
      if (!response.ok) { text("updated", "failed: " + data.error); return; }
      text("resolved-version", String(data.version));
      text("baseline", data.baseline || "none known");
      text("total-requests", String(data.totals.requests));
      text("total-errors", String(data.totals.errors));
      document.getElementById("no-traffic").hidden = data.traffic.t.length > 0;
      drawTraffic(data);
      drawDrift(data);
      drawSummary(data);
      drawFeatures(data);
      text("updated", new Date().toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC"));
      root.dataset.refreshes = String(Number(root.dataset.refreshes || 0) + 1);
    } catch (error) {
      text("updated", "failed: " + error);
    } finally {
      window.setTimeout(refresh, refreshMs);
    }
  }

  refresh();
})();
