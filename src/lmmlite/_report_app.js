/* lmmlite report: builds Plotly figures from the page's data (#lmm-data) and wires the
   clicks. Every picture is drawn by Plotly; this file only decodes arrays, makes traces and
   layouts, and fills the heritability and provenance tables. */
(function () {
  "use strict";
  var T0 = performance.now();
  var D = JSON.parse(document.getElementById("lmm-data").textContent);
  var MARKS = { parsed: performance.now() - T0 };
  var CONFIG = { responsive: true, displaylogo: false,
                 toImageButtonOptions: { format: "png", scale: 2 } };
  var BLUE = "#4a4ac0", ORANGE = "#e08a1e", RED = "#c0392b", GREEN = "#1e8449";
  var LINE_COLORS = [RED, "#8e44ad", "#16a085", "#7f8c8d"];

  function $(id) { return document.getElementById(id); }
  function dec(b64, T) {
    if (b64 === null || b64 === undefined) { return null; }
    var s = atob(b64), u = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) { u[i] = s.charCodeAt(i); }
    return new T(u.buffer);
  }
  function num(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) { return "NA"; }
    var d = digits || 4, a = Math.abs(v);
    var s = (a !== 0 && (a < 1e-3 || a >= 1e7)) ? Number(v).toExponential(d - 1) : Number(v).toPrecision(d);
    var parts = s.split("e");
    if (parts[0].indexOf(".") >= 0) { parts[0] = parts[0].replace(/\.?0+$/, ""); }
    return parts.join("e");
  }
  function fixed(v, d) { return (v === null || !isFinite(v)) ? "NA" : Number(v).toFixed(d); }
  function grouped(v) {
    if (!isFinite(v)) { return "NA"; }
    return Math.abs(v) >= 1000 ? thousands(Math.round(v)) : num(v, 5);
  }
  function thousands(v) { return String(v).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;" }[c];
    });
  }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  $("title").textContent = D.title;
  document.title = D.title;
  var summary = [];

  /* ------------------------------------------------------------------ the scan */
  var S = D.scan;
  var selectTrait = function () {};
  var traitIndex = new Map();
  if (S) {
    S.traits.forEach(function (t, i) { traitIndex.set(t, i); });
    var C = S.chroms, nchr = C.chr.length;
    var Md = S.data.markers;
    var M = { name: Md.name, chr: dec(Md.chr, Int32Array), pos: dec(Md.pos, Float64Array) };
    var genomeX = function (chr, pos) { return C.offset[chr] + pos - C.lo[chr]; };
    M.x = new Float64Array(M.pos.length);
    for (var mi = 0; mi < M.pos.length; mi++) { M.x[mi] = genomeX(M.chr[mi], M.pos[mi]); }
    var off = dec(S.data.offsets, Int32Array), mk = dec(S.data.marker, Int32Array);
    var LOD = dec(S.data.lod, Float32Array), PV = dec(S.data.mlog10p, Float32Array);
    if (PV) { PV = Float64Array.from(PV, function (v) { return Math.pow(10, -v); }); }
    var BETA = dec(S.data.beta, Float32Array), SE = dec(S.data.se, Float32Array);
    var AF = dec(S.data.af, Float32Array);
    var EFF = Object.keys(S.data.effects).map(function (k) {
      return { name: k, v: dec(S.data.effects[k], Float32Array) };
    });
    if (!EFF.length && BETA) { EFF = [{ name: "beta", v: BETA }]; }
    var Pk = S.peaks;
    var P = { off: dec(Pk.offsets, Int32Array), trait: dec(Pk.trait, Int32Array),
              chr: dec(Pk.chr, Int32Array), pos: dec(Pk.pos, Float64Array),
              lod: dec(Pk.lod, Float32Array),
              y: dec(Pk.y, Float64Array), marker: Pk.marker,
              lo: dec(Pk.ci_lo, Float64Array), hi: dec(Pk.ci_hi, Float64Array) };
    P.x = P.pos.map(function (v, i) { return genomeX(P.chr[i], v); });
    var full = S.keep === "all";
    var cur = 0, curChr = 0;

    // hover: the marker's name as text, the numbers as customdata formatted by Plotly
    var maxPos = 0;
    for (var q = 0; q < M.pos.length; q++) { if (M.pos[q] > maxPos) { maxPos = M.pos[q]; } }
    var posFormat = maxPos > 10000 ? ",.0f" : ".5~g";
    var hoverTemplate = function (c) {
      var s = "<b>%{text}</b><br>chr " + esc(C.chr[c]) + " at %{customdata[0]:" + posFormat + "}" +
              "<br>LOD %{y:.3f}";
      if (PV) { s += "<br>" + S.data.pcol + " %{customdata[1]:.3~g}"; }
      if (BETA) { s += "<br>beta %{customdata[2]:.4~g}"; }
      if (SE) { s += "<br>se %{customdata[3]:.4~g}"; }
      if (AF) { s += "<br>af %{customdata[4]:.3f}"; }
      return s + "<extra></extra>";
    };
    var hoverData = function (rows) {
      var text = new Array(rows.length), cd = new Array(rows.length);
      for (var i = 0; i < rows.length; i++) {
        var r = rows[i], m = mk[r];
        text[i] = M.name[m];
        cd[i] = [M.pos[m], PV ? PV[r] : null, BETA ? BETA[r] : null, SE ? SE[r] : null, AF ? AF[r] : null];
      }
      return { text: text, customdata: cd };
    };
    var linesFor = function (t) {
      var T = S.thresholds;
      if (T.kind === "perm") { return T.per_trait[String(t)] || []; }
      if (T.kind === "bonferroni") { return T.all; }
      return [];
    };
    var thresholdShapes = function (t, chromosomes, xOf) {
      var shapes = [], notes = [];
      linesFor(t).forEach(function (ln, k) {
        var color = LINE_COLORS[k % LINE_COLORS.length];
        chromosomes.forEach(function (c) {
          var v = C.x[c] ? ln.X : ln.A;
          if (v === null) { return; }
          var ends = xOf(c);
          shapes.push({ type: "line", xref: "x", yref: "y", x0: ends[0], x1: ends[1], y0: v, y1: v,
                        line: { color: color, width: 1.2, dash: k ? "dot" : "dash" } });
        });
        var value = ln.A !== null && S.thresholds.kind === "perm" ? ": LOD " + fixed(ln.A, 2) : "";
        notes.push("<span style='color:" + color + "'>" + (k ? "&middot;&middot;&middot; " : "- - ") + ln.label + value +
                   (ln.X !== null && ln.X !== ln.A ? " (X: " + fixed(ln.X, 2) + ")" : "") + "</span>");
      });
      return { shapes: shapes, notes: notes };
    };
    var maxThreshold = function (t) {
      var m = 0;
      linesFor(t).forEach(function (ln) { m = Math.max(m, ln.A || 0, ln.X || 0); });
      return m;
    };
    var peaksOf = function (t) {
      var out = [];
      for (var i = P.off[t]; i < P.off[t + 1]; i++) { out.push(i); }
      return out;
    };
    var center = function (c) { return C.offset[c] + C.span[c] / 2; };
    var chrEnds = function (c) { return [C.offset[c], C.offset[c] + C.span[c]]; };
    var allChroms = []; for (var ci = 0; ci < nchr; ci++) { allChroms.push(ci); }
    var total = nchr ? C.offset[nchr - 1] + C.span[nchr - 1] : 1;

    var drawManhattan = function (t) {
      var byChr = [];
      for (var c = 0; c < nchr; c++) { byChr.push([]); }
      for (var r = off[t]; r < off[t + 1]; r++) { byChr[M.chr[mk[r]]].push(r); }
      var n = off[t + 1] - off[t];
      var type = n > S.webgl_above ? "scattergl" : "scatter";
      var traces = [], top = 0;
      byChr.forEach(function (rows, c) {
        if (!rows.length) { return; }
        var x = new Float64Array(rows.length), y = new Float32Array(rows.length);
        rows.forEach(function (r, i) { x[i] = M.x[mk[r]]; y[i] = LOD[r]; top = Math.max(top, LOD[r]); });
        var h = hoverData(rows);
        traces.push({ type: type, mode: "markers", x: x, y: y, text: h.text, customdata: h.customdata,
                      meta: c, name: "chr " + C.chr[c], showlegend: false, hovertemplate: hoverTemplate(c),
                      marker: { size: full ? 4 : 7, color: c % 2 ? ORANGE : BLUE } });
      });
      var th = thresholdShapes(t, allChroms, chrEnds);
      var bands = [];
      allChroms.forEach(function (c) {
        if (c % 2) {
          bands.push({ type: "rect", xref: "x", yref: "paper", x0: C.offset[c], x1: C.offset[c] + C.span[c],
                       y0: 0, y1: 1, fillcolor: "#f1f1f6", line: { width: 0 }, layer: "below" });
        }
      });
      var pk = peaksOf(t).sort(function (a, b) { return P.lod[b] - P.lod[a]; }).slice(0, 30);
      var ann = pk.map(function (i) {
        return { x: P.x[i], y: P.lod[i], text: P.marker ? esc(P.marker[i]) : "chr " + C.chr[P.chr[i]],
                 showarrow: true, arrowhead: 0, arrowcolor: "#555", ax: 0, ay: -24,
                 font: { size: 10 }, bgcolor: "rgba(255,255,255,0.85)" };
      });
      top = Math.max(top, maxThreshold(t), 1);
      Plotly.react("manhattan", traces, {
        title: { text: "<b>" + esc(S.traits[t]) + "</b>: LOD along the genome" +
                 (full ? "" : " (only the rows of a table of " + S.keep + ")"), font: { size: 14 } },
        xaxis: { tickvals: allChroms.map(center), ticktext: C.chr, title: { text: "chromosome" },
                 showgrid: false, zeroline: false,
                 range: [-0.01 * total, total * 1.01] },
        yaxis: { title: { text: "LOD" }, range: [0, top * 1.15], zeroline: false },
        shapes: bands.concat(th.shapes), annotations: ann, hovermode: "closest",
        margin: { l: 55, r: 15, t: 40, b: 45 }, uirevision: "t" + t
      }, CONFIG);
      $("scan-note").innerHTML = [th.notes.join(" &nbsp; "), S.thresholds.why || ""].join(" ");
      return n;
    };
    var drawChr = function (c) {
      curChr = c;
      var t = cur, rows = [];
      for (var r = off[t]; r < off[t + 1]; r++) { if (M.chr[mk[r]] === c) { rows.push(r); } }
      rows.sort(function (a, b) { return M.pos[mk[a]] - M.pos[mk[b]]; });
      var x = rows.map(function (r) { return M.pos[mk[r]]; });
      var y = rows.map(function (r) { return LOD[r]; });
      var type = rows.length > S.webgl_above ? "scattergl" : "scatter";
      var hd = hoverData(rows);
      var traces = [{ type: type, mode: full ? "lines" : "markers", x: x, y: y, name: "LOD",
                      text: hd.text, customdata: hd.customdata,
                      hovertemplate: hoverTemplate(c),
                      line: { color: BLUE, width: 1.6 }, marker: { color: BLUE, size: 7 },
                      showlegend: false }];
      var lo = Math.min.apply(null, x.length ? x : [0]), hi = Math.max.apply(null, x.length ? x : [1]);
      var th = thresholdShapes(t, [c], function () { return [lo, hi]; });
      var shapes = th.shapes, ann = [];
      peaksOf(t).forEach(function (i) {
        if (P.chr[i] !== c) { return; }
        if (P.lo && isFinite(P.lo[i]) && isFinite(P.hi[i])) {
          shapes.push({ type: "rect", xref: "x", yref: "paper", x0: P.lo[i], x1: P.hi[i], y0: 0, y1: 1,
                        fillcolor: "rgba(241,196,15,0.25)", line: { width: 0 }, layer: "below" });
        }
        ann.push({ x: P.pos[i], y: P.lod[i], text: P.marker ? esc(P.marker[i]) : "peak",
                   showarrow: true, arrowhead: 0, ax: 0, ay: -24, font: { size: 10 },
                   bgcolor: "rgba(255,255,255,0.85)" });
      });
      var top = Math.max(Math.max.apply(null, y.length ? y : [0]), maxThreshold(t), 1);
      Plotly.react("chrplot", traces, {
        title: { text: "chr " + esc(C.chr[c]) + ": LOD curve of <b>" + esc(S.traits[t]) + "</b>" +
                 (rows.length ? "" : " (no markers drawn)"), font: { size: 14 } },
        xaxis: { title: { text: "position on chr " + C.chr[c] }, zeroline: false,
                 range: [C.lo[c] - 0.01 * C.span[c], C.lo[c] + 1.01 * C.span[c]] },
        yaxis: { title: { text: "LOD" }, range: [0, top * 1.15], zeroline: false },
        shapes: shapes, annotations: ann, hovermode: "closest",
        margin: { l: 55, r: 15, t: 40, b: 45 }
      }, CONFIG);
      var box = $("effects");
      if (full && EFF.length && rows.length) {
        box.hidden = false;
        var et = EFF.map(function (e) {
          return { type: type, mode: "lines", name: e.name, x: x,
                   y: rows.map(function (r) { return e.v[r]; }),
                   hovertemplate: e.name + " %{y:.4g} at %{x}<extra></extra>" };
        });
        Plotly.react("effects", et, {
          title: { text: "chr " + esc(C.chr[c]) + ": estimated effect" + (EFF.length > 1 ? "s" : ""),
                   font: { size: 13 } },
          xaxis: { title: { text: "position on chr " + C.chr[c] }, zeroline: false },
          yaxis: { title: { text: "effect" } }, height: 260, showlegend: EFF.length > 1,
          margin: { l: 55, r: 15, t: 36, b: 40 }
        }, CONFIG);
      } else {
        box.hidden = true;
      }
      Array.prototype.forEach.call($("chr-buttons").children, function (b, k) {
        b.className = k === c ? "on" : "";
      });
    };

    var drawQQ = function (t) {
      var q = S.qq ? S.qq[t] : null;
      if (!q) {
        Plotly.purge("qq");
        $("qq").hidden = true;
        $("qq-note").textContent = S.qq ? "No p-values for this trait." :
          (S.data.pcol ? "No QQ plot: the scan table holds only the " + S.keep +
           " (keep=" + S.keep + "), not every marker's p-value." : "No p-value column in the scan table.");
        return;
      }
      $("qq").hidden = false;
      var e = dec(q.expected, Float32Array), o = dec(q.observed, Float32Array);
      var lo = dec(q.lower, Float32Array), hi = dec(q.upper, Float32Array);
      var top = 1.05 * Math.max(e[0], Math.max.apply(null, Array.from(o)), 1);
      Plotly.react("qq", [
        { type: "scatter", mode: "lines", x: e, y: hi, line: { width: 0 }, hoverinfo: "skip",
          showlegend: false },
        { type: "scatter", mode: "lines", x: e, y: lo, fill: "tonexty", line: { width: 0 },
          fillcolor: "rgba(128,128,128,0.25)", name: "95% band", hoverinfo: "skip" },
        { type: "scatter", mode: "lines", x: [0, top], y: [0, top], line: { color: "#888", width: 1 },
          hoverinfo: "skip", showlegend: false },
        { type: "scatter", mode: "markers", x: e, y: o, name: S.data.pcol,
          marker: { color: BLUE, size: 4 },
          hovertemplate: "expected %{x:.2f}<br>observed %{y:.2f}<extra></extra>" }
      ], {
        title: { text: "QQ: " + esc(S.traits[t]), font: { size: 14 }, x: 0.02, xanchor: "left" },
        width: 440, height: 440, autosize: false,
        xaxis: { title: { text: "expected -log10 p" }, range: [0, top], constrain: "domain" },
        yaxis: { title: { text: "observed -log10 " + S.data.pcol }, range: [0, top],
                 scaleanchor: "x", scaleratio: 1, constrain: "domain" },
        annotations: [{ xref: "paper", yref: "paper", x: 0.03, y: 0.97, xanchor: "left",
                        yanchor: "top", showarrow: false, align: "left",
                        text: "λ<sub>GC</sub> = " + fixed(q.lambda, 3) + "<br>n = " +
                              q.n.toLocaleString("en-US") }],
        legend: { x: 0.98, y: 0.02, xanchor: "right", yanchor: "bottom" },
        margin: { l: 55, r: 15, t: 40, b: 45 }, hovermode: "closest"
      }, CONFIG);
      $("qq-note").textContent = "Pointwise 95% band: the i-th smallest of n uniform p-values " +
        "follows Beta(i, n - i + 1). λGC: median 1-df χ² of the p-values / 0.455. " +
        "Points on the same pixel are drawn once.";
    };

    var listPeaks = function (t) {
      var ids = peaksOf(t), box = $("peak-list");
      box.innerHTML = "";
      if (!ids.length) { box.appendChild(el("p", { "class": "muted" }, "No peaks (" + Pk.source + ").")); return; }
      var tab = el("table", { "class": "data" });
      var hasCI = !!P.lo;
      tab.innerHTML = "<thead><tr><th>chr</th><th>position</th><th>marker</th><th>LOD</th>" +
        (hasCI ? "<th>interval</th>" : "") + "</tr></thead>";
      var tb = el("tbody");
      ids.forEach(function (i) {
        var tr = el("tr");
        tr.innerHTML = "<td>" + esc(C.chr[P.chr[i]]) + "</td><td>" + grouped(P.pos[i]) + "</td><td>" +
          (P.marker ? esc(P.marker[i]) : "") + "</td><td>" + fixed(P.lod[i], 2) + "</td>" +
          (hasCI ? "<td>" + grouped(P.lo[i]) + " – " + grouped(P.hi[i]) + "</td>" : "");
        tr.style.cursor = "pointer";
        tr.addEventListener("click", function () { drawChr(P.chr[i]); });
        tb.appendChild(tr);
      });
      tab.appendChild(tb);
      box.appendChild(tab);
      box.appendChild(el("p", { "class": "note" }, "Peaks: " + Pk.source + ". Click a row to see its chromosome."));
    };

    var bestChr = function (t) {
      var best = -1, c = 0;
      for (var r = off[t]; r < off[t + 1]; r++) { if (LOD[r] > best) { best = LOD[r]; c = M.chr[mk[r]]; } }
      return c;
    };

    selectTrait = function (t, chr) {
      if (t < 0 || t >= S.traits.length) { return; }
      cur = t;
      $("trait-input").value = S.traits[t];
      var n = drawManhattan(t);
      $("trait-info").textContent = (t + 1) + " of " + S.traits.length.toLocaleString("en-US") +
        " traits; " + n.toLocaleString("en-US") + (n === 1 ? " point" : " points") + " drawn";
      drawChr(chr === undefined ? bestChr(t) : chr);
      drawQQ(t);
      listPeaks(t);
    };

    // the picker
    var fillList = function () {  // on first use: tens of thousands of options cost time
      if ($("trait-list").children.length) { return; }
      var frag = document.createDocumentFragment();
      S.traits.forEach(function (t) { frag.appendChild(el("option", { value: t })); });
      $("trait-list").appendChild(frag);
    };
    $("trait-input").addEventListener("focus", fillList);
    var pick = function () {
      var t = traitIndex.get($("trait-input").value);
      if (t !== undefined && t !== cur) { selectTrait(t); }
    };
    $("trait-input").addEventListener("change", pick);
    $("trait-input").addEventListener("input", pick);
    $("trait-prev").addEventListener("click", function () { selectTrait(Math.max(cur - 1, 0)); });
    $("trait-next").addEventListener("click", function () {
      selectTrait(Math.min(cur + 1, S.traits.length - 1));
    });
    if (S.traits.length < 2) { $("trait-prev").hidden = true; $("trait-next").hidden = true; }
    C.chr.forEach(function (name, c) {
      var b = el("button", { type: "button", "data-chr": name }, name);
      b.addEventListener("click", function () { drawChr(c); });
      $("chr-buttons").appendChild(b);
    });
    $("scan-section").hidden = false;
    summary.push(S.traits.length.toLocaleString("en-US") + " trait(s), " + S.rows.toLocaleString("en-US") +
                 " scan rows (" + (S.keep === "all" ? "every marker" : "keep=" + S.keep) + ")");
    var thin = S.thin, note = "";
    if (thin.thinned) {
      note = "Thinned for speed: a trait with more than " + thin.max_points.toLocaleString("en-US") +
        " markers shows every marker with LOD ≥ " + thin.floor + " and, below that floor, the highest " +
        "marker in each cell of a " + thin.grid[0] + " × " + thin.grid[1] + " grid; " +
        S.shown.toLocaleString("en-US") + " of " + S.rows.toLocaleString("en-US") +
        " rows are drawn (the picture is the same at screen resolution).";
    }
    var largest = Pk.n;
    for (var ti = 0; ti < S.traits.length; ti++) { largest = Math.max(largest, off[ti + 1] - off[ti]); }
    if (largest > S.webgl_above) {
      note += " Plots of more than " + S.webgl_above.toLocaleString("en-US") + " points are drawn with WebGL.";
    }
    if (note) { summary.push(note); }

    // click a point: its chromosome's curve beneath
    var wire = function () {
      $("manhattan").on("plotly_click", function (ev) {
        var pt = ev.points && ev.points[0];
        if (pt && pt.data.meta !== undefined) { drawChr(pt.data.meta); }
      });
    };

    /* ---------------------------------------------------- peaks of all traits */
    var drawCistrans = function () {
      var n = Pk.n;
      var tx = [], ty = [], tl = [], text = [], tr = [], tc = [], cd = [];
      for (var i = 0; i < n; i++) {
        if (!isFinite(P.y[i])) { continue; }
        tx.push(P.x[i]); ty.push(P.y[i]); tl.push(P.lod[i]); tr.push(P.trait[i]); tc.push(P.chr[i]);
        text.push(S.traits[P.trait[i]]);
        cd.push([P.marker ? P.marker[i] : "", C.chr[P.chr[i]], P.pos[i], P.trait[i]]);
      }
      var type = tx.length > S.webgl_above ? "scattergl" : "scatter";
      var byPos = Pk.by_position;
      var shapes = [];
      if (byPos) {
        allChroms.slice(1).forEach(function (c) {
          var v = C.offset[c] - 0.5 * (C.offset[c] - C.offset[c - 1] - C.span[c - 1]);
          shapes.push({ type: "line", xref: "x", yref: "paper", x0: v, x1: v, y0: 0, y1: 1,
                        line: { color: "#ddd", width: 1 }, layer: "below" });
          shapes.push({ type: "line", yref: "y", xref: "paper", y0: v, y1: v, x0: 0, x1: 1,
                        line: { color: "#ddd", width: 1 }, layer: "below" });
        });
        shapes.push({ type: "line", xref: "x", yref: "y", x0: 0, y0: 0, x1: total, y1: total,
                      line: { color: "rgba(192,57,43,0.35)", width: 1, dash: "dot" }, layer: "below" });
      }
      var ticks = { tickvals: allChroms.map(center), ticktext: C.chr, showgrid: false, zeroline: false };
      Plotly.react("cistrans", [{
        type: type, mode: "markers", x: tx, y: ty, text: text, customdata: cd, meta: tc,
        hovertemplate: "<b>%{text}</b><br>peak %{customdata[0]} chr %{customdata[1]} at %{customdata[2]:" +
                       posFormat + "}<br>LOD %{marker.color:.2f}<extra></extra>",
        marker: { size: tx.length > 10000 ? 3 : tx.length > 2000 ? 4 : 6, color: tl, colorscale: "Viridis", reversescale: true, showscale: true,
                  colorbar: { title: { text: "LOD" }, thickness: 12 }, opacity: 0.85 }
      }], {
        xaxis: Object.assign({ title: { text: "QTL position (peak)" }, range: [0, total] }, ticks),
        yaxis: byPos ? Object.assign({ title: { text: "trait position" }, range: [0, total],
                                       scaleanchor: "x", scaleratio: 1 }, ticks)
                     : { title: { text: "trait (table order)" }, zeroline: false },
        shapes: shapes, hovermode: "closest", margin: { l: 60, r: 15, t: 20, b: 45 }
      }, CONFIG);
      $("cistrans").on("plotly_click", function (ev) {
        var pt = ev.points && ev.points[0];
        if (!pt) { return; }
        selectTrait(pt.customdata[3], pt.data.meta[pt.pointIndex]);
        $("scan-section").scrollIntoView({ behavior: "auto" });
      });
      $("cistrans-note").textContent = tx.length.toLocaleString("en-US") + " peaks of " +
        S.traits.length.toLocaleString("en-US") + " traits (" + Pk.source + "). " +
        (byPos ? "Cis-acting QTL lie on the diagonal, a trans hotspot makes a vertical band. "
               : "Without trait positions the traits are in table order (give trait positions for a cis/trans plot). ") +
        "Click a dot to open its trait's LOD curve." +
        (Pk.dropped ? " " + Pk.dropped + " peak(s) of traits or chromosomes not in the scan left out." : "");
      $("cistrans-section").hidden = false;
    };

    MARKS.scanData = performance.now() - T0;
    selectTrait(0);
    wire();
    MARKS.firstTrait = performance.now() - T0;
    if (S.traits.length > 1 && Pk.n > 0) { drawCistrans(); }
    MARKS.cistrans = performance.now() - T0;
  }

  /* -------------------------------------------------------------- heritability */
  var H = D.herit;
  if (H) {
    var R = H.rows, nh = R.trait.length;
    var flags = R.trait.map(function (_, i) {
      return (R.boundary[i] ? "boundary " : "") + (R.converged[i] ? "" : "not-converged");
    });
    var state = { key: null, dir: 1, filter: "", flagged: false };
    var LIMIT = 500;
    var cell = function (v, d) { return "<td>" + (v === null ? "NA" : fixed(v, d)) + "</td>"; };
    var render = function () {
      var f = state.filter.toLowerCase(), idx = [];
      for (var i = 0; i < nh; i++) {
        if (f && R.trait[i].toLowerCase().indexOf(f) < 0) { continue; }
        if (state.flagged && !flags[i]) { continue; }
        idx.push(i);
      }
      if (state.key) {
        var col = state.key === "flags" ? flags : R[state.key], dir = state.dir;
        var text = state.key === "trait" || state.key === "flags";
        idx.sort(function (a, b) {
          var x = col[a], y = col[b];
          if (x === null || x === undefined) { return (y === null || y === undefined) ? a - b : 1; }
          if (y === null || y === undefined) { return -1; }
          var c = text ? String(x).localeCompare(String(y), undefined, { numeric: true }) : x - y;
          return c ? dir * c : a - b;
        });
      }
      var rows = idx.slice(0, LIMIT).map(function (i) {
        var lo = R.lo[i], hi = R.hi[i], h = R.hsq[i];
        var bar = "<div class='track' title='hsq " + fixed(h, 3) + " [" + fixed(lo, 3) + ", " + fixed(hi, 3) + "]'>" +
          (lo !== null && hi !== null ? "<div class='ci' style='left:" + (100 * lo) + "%;width:" +
            Math.max(100 * (hi - lo), 0.5) + "%'></div>" : "") +
          (h !== null ? "<div class='est' style='left:" + (100 * h) + "%'></div>" : "") + "</div>";
        var badges = (R.boundary[i] ? "<span class='flag boundary' title='hsq on the boundary of [0, 1]'>boundary</span>" : "") +
          (R.converged[i] ? "" : "<span class='flag noconv' title='the fit did not converge'>not converged</span>");
        var name = traitIndex.has(R.trait[i]) ? "<a data-trait='" + esc(R.trait[i]) + "'>" + esc(R.trait[i]) + "</a>"
                                            : esc(R.trait[i]);
        return "<tr><td class='trait'>" + name + "</td><td>" + (R.n[i] === null ? "NA" : R.n[i]) + "</td>" +
          cell(h, 3) + cell(lo, 3) + cell(hi, 3) + "<td>" + bar + "</td>" + cell(R.se[i], 3) +
          "<td>" + num(R.p[i], 3) + "</td><td>" + badges + "</td></tr>";
      });
      $("herit").tBodies[0].innerHTML = rows.join("");
      $("herit-info").textContent = (idx.length > LIMIT ? "showing the first " + LIMIT + " of " : "") +
        idx.length.toLocaleString("en-US") + " of " + nh.toLocaleString("en-US") + " traits";
    };
    Array.prototype.forEach.call($("herit").tHead.rows[0].cells, function (th) {
      if (th.classList.contains("nosort")) { return; }
      th.addEventListener("click", function () {
        var key = th.getAttribute("data-key");
        state.dir = state.key === key ? -state.dir : 1;
        state.key = key;
        Array.prototype.forEach.call(th.parentNode.cells, function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
        render();
      });
    });
    $("herit-filter").addEventListener("input", function (e) { state.filter = e.target.value; render(); });
    $("herit-flagged").addEventListener("change", function (e) { state.flagged = e.target.checked; render(); });
    $("herit").addEventListener("click", function (e) {
      var a = e.target.closest("a[data-trait]");
      if (a) { selectTrait(traitIndex.get(a.getAttribute("data-trait"))); $("scan-section").scrollIntoView(); }
    });
    var nb = R.boundary.filter(Boolean).length, nc = R.converged.filter(function (c) { return !c; }).length;
    $("herit-note").textContent = "Bars: the estimate (dark) and the " + H.interval + " (light) on [0, 1]. " +
      nb + " trait(s) on the boundary, " + nc + " not converged. Click a column to sort.";
    render();
    MARKS.herit = performance.now() - T0;
    $("herit-section").hidden = false;
    summary.push(nh.toLocaleString("en-US") + " heritabilit" + (nh === 1 ? "y" : "ies"));
  }

  /* ---------------------------------------------------------------- provenance */
  var V = D.provenance, pt = $("provenance").tBodies[0];
  var prow = function (k, html) { var tr = el("tr"); tr.innerHTML = "<th>" + esc(k) + "</th><td>" + html + "</td>"; pt.appendChild(tr); };
  prow("lmmlite", esc(V.lmmlite));
  prow("created", esc(V.created));
  prow("Python / Plotly", esc(V.python) + " / " + esc(V.plotly));
  V.inputs.forEach(function (r) {
    prow(r.input, "<code>" + esc(r.source) + "</code><br>" + (r.rows === undefined ? "" : r.rows.toLocaleString("en-US") + " rows, ") +
         (r.bytes === undefined ? "" : r.bytes.toLocaleString("en-US") + " bytes, ") + "sha256 <code>" + esc(r.sha256) + "</code>" +
         (r.note ? " <span class='muted'>(" + esc(r.note) + ")</span>" : ""));
  });
  prow("options", "<code>" + esc(JSON.stringify(V.options)) + "</code>");
  if (V.scan_manifest) { prow("scan run", "<code>" + esc(JSON.stringify(V.scan_manifest)) + "</code>"); }
  $("summary").textContent = summary.join(" · ") + " · lmmlite " + V.lmmlite + " · " + V.created;
  var toc = $("toc");
  [["scan-section", "Genome scan"], ["cistrans-section", "Peaks of all traits"],
   ["herit-section", "Heritability"], ["provenance-section", "Provenance"]].forEach(function (s) {
    if (!$(s[0]).hidden) { toc.appendChild(el("a", { href: "#" + s[0] }, s[1])); }
  });
  window.lmmReport = { selectTrait: selectTrait, data: D, ms: performance.now() - T0, marks: MARKS };
  document.body.setAttribute("data-ready", "1");
})();
