// The skyrun timeline: draws the spans embedded in #data as actor lanes and
// a virtualised waterfall on canvases, with zoom, hover and a profile table.
// No network, no libraries. With `#selftest` in the URL it also walks every
// row through the same drawing code and writes what it drew, as JSON, into
// the hidden #selftest element (the browser tests read it with --dump-dom).
(function () {
  "use strict";
  var errors = [];
  function reportError(msg) {
    errors.push(String(msg));
    var box = document.getElementById("errors");
    box.hidden = false;
    box.textContent = "Script error: " + errors.join("\n");
  }
  window.addEventListener("error", function (ev) {
    reportError(ev.message || ev.error);
  });

  var D = JSON.parse(document.getElementById("data").textContent);
  var N = D.name.length;
  var ROW = 18, LABEL = 300, LEVEL_H = 9, MAX_LEVELS = 8, TRACK_GAP = 4, RIGHT = 10;
  // Distinct hues, no reds: red marks failed spans.
  var PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#76b7b2",
    "#9c755f", "#ff9da7", "#a0cbe8", "#8cd17d", "#ffbe7d", "#d4a6c8", "#499894",
    "#bab0ac", "#86bcb6", "#79706e"];
  var FAIL = "#d62728";
  function colour(n) {
    return n < PALETTE.length ? PALETTE[n] : "hsl(" + ((n * 137.5) % 360) + ",55%,60%)";
  }

  var $ = function (id) { return document.getElementById(id); };
  var axis = $("axis"), lanes = $("lanes"), rows = $("rows");
  var scroller = $("scroller"), rowsBox = $("rows-box"), lanesBox = $("lanes-box");
  var tooltip = $("tooltip");
  $("spacer").style.height = (N * ROW) + "px";

  // The time window shown, in microseconds since the first span started.
  var total = Math.max(D.total_us, 1);
  var v0 = 0, v1 = total;
  var hovered = -1, selected = -1, highlightName = -1;

  // ---- the actor lanes: per track and nesting level, rows sorted by start.
  var levels = D.tracks.map(function () { return 1; });
  var buckets = {};
  for (var r = 0; r < N; r++) {
    var t = D.track[r], l = Math.min(D.level[r], MAX_LEVELS - 1);
    levels[t] = Math.max(levels[t], l + 1);
    var key = t * MAX_LEVELS + l;
    (buckets[key] = buckets[key] || []).push(r);
  }
  var trackTop = [], y = 2;
  for (var k = 0; k < D.tracks.length; k++) {
    trackTop.push(y);
    y += levels[k] * LEVEL_H + TRACK_GAP;
  }
  var lanesHeight = y + 2;
  var keys = Object.keys(buckets).map(Number);
  keys.forEach(function (key) {
    // Within one track and level spans are disjoint, so ends sort as starts do.
    buckets[key].sort(function (a, b) { return D.start[a] - D.start[b]; });
  });

  // ---- geometry
  function width() { return rowsBox.clientWidth; }
  function X(us) { return LABEL + (us - v0) / (v1 - v0) * (width() - LABEL - RIGHT); }
  function T(x) { return v0 + (x - LABEL) / (width() - LABEL - RIGHT) * (v1 - v0); }
  function fmt(us) {
    var a = Math.abs(us);
    if (a >= 1e6) return (us / 1e6).toFixed(3) + " s";
    if (a >= 1e3) return (us / 1e3).toFixed(a >= 1e5 ? 1 : 2) + " ms";
    if (a >= 1) return us.toFixed(1) + " µs";
    if (us === 0) return "0";
    return (us * 1000).toFixed(0) + " ns";
  }
  function setup(canvas, w, h) {
    var dpr = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.floor(w * dpr));
    canvas.height = Math.max(1, Math.floor(h * dpr));
    canvas.style.width = w + "px";
    canvas.style.height = h + "px";
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    return ctx;
  }
  function firstVisible(arr) {
    // The first row of `arr` (sorted, disjoint) that ends at or after v0.
    var lo = 0, hi = arr.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (D.start[arr[mid]] + D.dur[arr[mid]] < v0) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
  function alphaFor(r) {
    return highlightName < 0 || D.name[r] === highlightName ? 1 : 0.18;
  }

  // ---- drawing
  function drawAxis() {
    var w = width(), ctx = setup(axis, w, 24);
    ctx.fillStyle = "#f5f6f8";
    ctx.fillRect(0, 0, w, 24);
    ctx.fillStyle = "#1d2330";
    ctx.fillText("started " + D.t0, 6, 12);
    var span = v1 - v0, target = span / Math.max(2, (w - LABEL) / 110);
    var step = Math.pow(10, Math.floor(Math.log10(target)));
    // The smallest of 1, 2, 5 × 10^k at least as wide as the target.
    if (target / step > 5) step *= 10; else if (target / step > 2) step *= 5; else if (target / step > 1) step *= 2;
    ctx.strokeStyle = "#b9bfca";
    for (var t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
      var x = X(t);
      ctx.beginPath(); ctx.moveTo(x + 0.5, 14); ctx.lineTo(x + 0.5, 24); ctx.stroke();
      ctx.fillText(fmt(t), x + 3, 8);
    }
    if (drag) {
      ctx.fillStyle = "rgba(78,121,167,0.25)";
      ctx.fillRect(Math.min(drag.x0, drag.x1), 0, Math.abs(drag.x1 - drag.x0), 24);
    }
    $("window").textContent = "showing " + fmt(v1 - v0) + " of " + fmt(total);
  }

  var lanesDrawn = 0;
  function drawLanes() {
    var w = width(), ctx = setup(lanes, w, lanesHeight);
    lanesBox.style.height = Math.min(lanesHeight, 240) + "px";
    lanesBox.style.overflowY = lanesHeight > 240 ? "auto" : "hidden";
    lanesDrawn = 0;
    for (var t = 0; t < D.tracks.length; t++) {
      ctx.fillStyle = t % 2 ? "#fafbfc" : "#f1f3f6";
      ctx.fillRect(0, trackTop[t] - 2, w, levels[t] * LEVEL_H + TRACK_GAP);
      ctx.fillStyle = "#1d2330";
      ctx.fillText(D.tracks[t], 6, trackTop[t] + Math.min(levels[t], 2) * LEVEL_H / 2);
    }
    ctx.save();
    ctx.beginPath(); ctx.rect(LABEL, 0, w - LABEL, lanesHeight); ctx.clip();
    keys.forEach(function (key) {
      var t = Math.floor(key / MAX_LEVELS), l = key % MAX_LEVELS, arr = buckets[key];
      var y = trackTop[t] + l * LEVEL_H, lastPx = -1;
      for (var i = firstVisible(arr); i < arr.length; i++) {
        var r = arr[i], x0 = X(D.start[r]), x1 = X(D.start[r] + D.dur[r]);
        if (x0 > w) break;
        // Spans narrower than a pixel merge into the bar already drawn there.
        if (Math.floor(x1) <= lastPx) continue;
        x0 = Math.max(x0, LABEL - 1, lastPx + 1);
        x1 = Math.max(x1, x0 + 1);
        ctx.globalAlpha = alphaFor(r);
        ctx.fillStyle = D.err[r] !== null ? FAIL : colour(D.name[r]);
        ctx.fillRect(x0, y, x1 - x0, LEVEL_H - 1);
        lastPx = Math.floor(x1);
        lanesDrawn++;
      }
    });
    ctx.restore();
    if (drag && drag.on === lanes) {
      ctx.fillStyle = "rgba(78,121,167,0.25)";
      ctx.fillRect(Math.min(drag.x0, drag.x1), 0, Math.abs(drag.x1 - drag.x0), lanesHeight);
    }
  }

  var drawnRows = null; // the self-test's record of what drawRows drew
  function drawRows() {
    var w = width(), h = rowsBox.clientHeight, ctx = setup(rows, w, h);
    var top = scroller.scrollTop;
    var first = Math.floor(top / ROW), last = Math.min(N, Math.ceil((top + h) / ROW));
    ctx.fillStyle = "#d8dce3";
    ctx.fillRect(LABEL - 1, 0, 1, h);
    for (var r = first; r < last; r++) {
      var y = r * ROW - top, failed = D.err[r] !== null;
      if (r === selected || r === hovered) {
        ctx.fillStyle = r === selected ? "#dbe7f7" : "#eef3fb";
        ctx.fillRect(0, y, w, ROW);
      } else if (r % 2) {
        ctx.fillStyle = "#fafbfc";
        ctx.fillRect(0, y, w, ROW);
      }
      // The label: indented by depth, the actor's name after the span's.
      var indent = 6 + Math.min(D.depth[r], 20) * 12;
      ctx.save();
      ctx.beginPath(); ctx.rect(0, y, LABEL - 4, ROW); ctx.clip();
      ctx.fillStyle = colour(D.name[r]);
      ctx.fillRect(indent, y + 5, 8, 8);
      ctx.fillStyle = failed ? FAIL : "#1d2330";
      var label = (failed ? "✖ " : "") + D.names[D.name[r]];
      ctx.fillText(label, indent + 12, y + ROW / 2);
      var lw = ctx.measureText(label).width;
      ctx.fillStyle = "#7a8290";
      ctx.fillText(D.track_lanes[D.track[r]], indent + 18 + lw, y + ROW / 2);
      ctx.restore();
      // The bar.
      var x0 = X(D.start[r]), x1 = X(D.start[r] + D.dur[r]);
      var bx0 = Math.max(x0, LABEL), bx1 = Math.min(Math.max(x1, x0 + 1), w - 2);
      ctx.globalAlpha = alphaFor(r);
      if (bx1 >= LABEL && bx0 <= w) {
        ctx.fillStyle = colour(D.name[r]);
        ctx.fillRect(bx0, y + 3, Math.max(1, bx1 - bx0), ROW - 6);
        if (failed) {
          ctx.strokeStyle = FAIL; ctx.lineWidth = 2;
          ctx.strokeRect(bx0, y + 3, Math.max(1, bx1 - bx0), ROW - 6);
          ctx.fillStyle = FAIL;
          ctx.fillText("✖", Math.min(bx1 + 3, w - 12), y + ROW / 2);
        }
        if (bx1 - bx0 > 60) {
          ctx.fillStyle = "#fff";
          ctx.fillText(fmt(D.dur[r]), bx0 + 4, y + ROW / 2);
        }
      }
      ctx.globalAlpha = 1;
      if (drawnRows) drawnRows[r] = { row: r, y: y, x0: x0, x1: x1 };
    }
  }

  var pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; drawAll(); });
  }
  function drawAll() { drawAxis(); drawLanes(); drawRows(); }

  // ---- details
  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;" }[c];
    });
  }
  function detailsHtml(r) {
    var attrs = JSON.parse(D.attrs[r]);
    var rowsHtml = [
      ["actor", D.tracks[D.track[r]]],
      ["start", "+" + fmt(D.start[r])],
      ["duration", fmt(D.dur[r])],
      ["span_id", D.id[r]],
      ["parent_id", D.pid[r] || "(root)"]
    ];
    if (D.err[r] !== null) rowsHtml.push(["status", "ERROR " + D.err[r]]);
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      rowsHtml.push([k, typeof v === "string" ? v : JSON.stringify(v)]);
    });
    return "<b class=\"" + (D.err[r] !== null ? "failed" : "") + "\">" +
      (D.err[r] !== null ? "✖ " : "") + esc(D.names[D.name[r]]) + "</b><table>" +
      rowsHtml.map(function (kv) {
        return "<tr><td>" + esc(kv[0]) + "</td><td>" + esc(kv[1]) + "</td></tr>";
      }).join("") + "</table>";
  }
  function select(r) {
    selected = r;
    $("details").innerHTML = r < 0 ? "" : detailsHtml(r);
    redraw();
  }
  function showTooltip(r, ev) {
    if (r < 0) { tooltip.hidden = true; return; }
    tooltip.innerHTML = detailsHtml(r);
    tooltip.hidden = false;
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var tw = tooltip.offsetWidth, th = tooltip.offsetHeight;
    if (x + tw > window.innerWidth) x = Math.max(0, ev.clientX - tw - 14);
    if (y + th > window.innerHeight) y = Math.max(0, ev.clientY - th - 14);
    tooltip.style.left = x + "px";
    tooltip.style.top = y + "px";
  }
  function rowAt(ev) {
    var rect = scroller.getBoundingClientRect();
    var r = Math.floor((ev.clientY - rect.top + scroller.scrollTop) / ROW);
    return r >= 0 && r < N ? r : -1;
  }
  function laneSpanAt(ev) {
    var rect = lanes.getBoundingClientRect();
    var px = ev.clientX - rect.left, py = ev.clientY - rect.top, t = T(px);
    for (var k = 0; k < D.tracks.length; k++) {
      if (py < trackTop[k] || py >= trackTop[k] + levels[k] * LEVEL_H) continue;
      var arr = buckets[k * MAX_LEVELS + Math.floor((py - trackTop[k]) / LEVEL_H)] || [];
      var slack = (v1 - v0) / (width() - LABEL) * 2;
      for (var i = firstVisible(arr); i < arr.length && D.start[arr[i]] <= t + slack; i++) {
        if (D.start[arr[i]] + D.dur[arr[i]] >= t - slack) return arr[i];
      }
    }
    return -1;
  }

  // ---- zoom and pan
  function zoomTo(a, b) {
    var min = 0.5;
    if (b - a < min) { var c = (a + b) / 2; a = c - min / 2; b = c + min / 2; }
    var pad = (total - 0) * 0.02;
    v0 = Math.max(-pad, a); v1 = Math.min(total + pad, b);
    if (v1 <= v0) { v0 = 0; v1 = total; }
    redraw();
  }
  function zoomAround(t, factor) {
    zoomTo(t - (t - v0) * factor, t + (v1 - t) * factor);
  }
  function pan(fraction) {
    var d = (v1 - v0) * fraction;
    v0 += d; v1 += d;
    redraw();
  }
  function onWheel(ev) {
    if (ev.ctrlKey || ev.altKey || ev.metaKey) {
      ev.preventDefault();
      var rect = axis.getBoundingClientRect();
      zoomAround(T(Math.max(LABEL, ev.clientX - rect.left)), Math.exp(ev.deltaY * 0.002));
    } else if (ev.shiftKey) {
      ev.preventDefault();
      pan((ev.deltaY || ev.deltaX) / 1000);
    }
  }
  var drag = null;
  function dragStart(canvas) {
    return function (ev) {
      var rect = canvas.getBoundingClientRect();
      drag = { on: canvas, x0: ev.clientX - rect.left, x1: ev.clientX - rect.left, left: rect.left };
    };
  }
  window.addEventListener("mousemove", function (ev) {
    if (drag) { drag.x1 = ev.clientX - drag.left; redraw(); }
  });
  window.addEventListener("mouseup", function (ev) {
    if (!drag) return;
    var d = drag;
    drag = null;
    if (Math.abs(d.x1 - d.x0) > 3) {
      zoomTo(T(Math.max(LABEL, Math.min(d.x0, d.x1))), T(Math.max(d.x0, d.x1)));
    } else if (d.on === lanes) {
      select(laneSpanAt(ev));
    } else {
      redraw();
    }
  });
  axis.addEventListener("mousedown", dragStart(axis));
  lanes.addEventListener("mousedown", dragStart(lanes));
  [axis, lanes, scroller].forEach(function (el) {
    el.addEventListener("wheel", onWheel, { passive: false });
  });
  scroller.addEventListener("scroll", redraw);
  scroller.addEventListener("mousemove", function (ev) {
    var r = rowAt(ev);
    if (r !== hovered) { hovered = r; redraw(); }
    showTooltip(r, ev);
  });
  scroller.addEventListener("mouseleave", function () {
    hovered = -1; tooltip.hidden = true; redraw();
  });
  lanes.addEventListener("mousemove", function (ev) {
    if (!drag) showTooltip(laneSpanAt(ev), ev);
  });
  lanes.addEventListener("mouseleave", function () { tooltip.hidden = true; });
  scroller.addEventListener("click", function (ev) { select(rowAt(ev)); });
  scroller.addEventListener("dblclick", function (ev) {
    var r = rowAt(ev);
    if (r >= 0) {
      var m = Math.max(D.dur[r] * 0.05, 1);
      zoomTo(D.start[r] - m, D.start[r] + D.dur[r] + m);
    }
  });
  $("zoom-in").addEventListener("click", function () { zoomAround((v0 + v1) / 2, 0.5); });
  $("zoom-out").addEventListener("click", function () { zoomAround((v0 + v1) / 2, 2); });
  $("zoom-reset").addEventListener("click", function () { zoomTo(0, total); });
  window.addEventListener("keydown", function (ev) {
    if (ev.key === "+" || ev.key === "=") zoomAround((v0 + v1) / 2, 0.5);
    else if (ev.key === "-") zoomAround((v0 + v1) / 2, 2);
    else if (ev.key === "0") zoomTo(0, total);
    else if (ev.key === "ArrowLeft") pan(-0.2);
    else if (ev.key === "ArrowRight") pan(0.2);
  });
  window.addEventListener("resize", redraw);

  // ---- header and profile table
  var failedCount = D.err.filter(function (e) { return e !== null; }).length;
  $("summary").textContent = N + " spans · " + D.traces + (D.traces === 1 ? " trace" : " traces") +
    " · " + fmt(total) + (failedCount ? " · " + failedCount + " failed" : "");
  $("profile").tBodies[0].innerHTML = D.profile.map(function (p, i) {
    return "<tr data-name=\"" + i + "\"><td><span class=\"swatch\" style=\"background:" + colour(i) +
      "\"></span></td><td>" + esc(p.name) + "</td><td>" + p.count + "</td><td>" + esc(p.total) +
      "</td><td>" + esc(p.mean) + "</td><td>" + esc(p.p50) + "</td><td>" + esc(p.p99) +
      "</td><td>" + esc(p.max) + "</td></tr>";
  }).join("");
  $("profile").addEventListener("click", function (ev) {
    var tr = ev.target.closest("tr[data-name]");
    if (!tr) return;
    var n = Number(tr.getAttribute("data-name"));
    highlightName = highlightName === n ? -1 : n;
    redraw();
  });

  drawAll();
  // Since navigation started: reading the file, parsing, the first drawing.
  var opened = Math.round(performance.now());
  $("summary").textContent += " · opened in " + opened + " ms";
  $("summary").setAttribute("data-opened-ms", opened);

  // ---- self-test: every row through drawRows, every span's details built.
  if (location.hash === "#selftest") {
    drawnRows = {};
    var step = Math.max(ROW, rowsBox.clientHeight - ROW);
    for (var top = 0; ; top += step) {
      scroller.scrollTop = top;
      drawRows();
      if (scroller.scrollTop < top || top >= N * ROW) break;
    }
    var attributes = 0;
    for (var i = 0; i < N; i++) {
      var html = detailsHtml(i);
      attributes += Object.keys(JSON.parse(D.attrs[i])).length;
      if (html.indexOf(esc(D.names[D.name[i]])) < 0) reportError("row " + i + ": details lack the name");
    }
    // Zoom: the whole run, then its first half; row 0's bar doubles in width.
    scroller.scrollTop = 0;
    zoomTo(0, total);
    drawRows();
    var before = drawnRows[0].x1 - drawnRows[0].x0;
    zoomTo(0, total / 2);
    drawRows();
    var zoomed = (drawnRows[0].x1 - drawnRows[0].x0) / before;
    zoomTo(0, total);
    drawRows();
    // Hover and click on the second row, through real mouse events.
    var box = scroller.getBoundingClientRect();
    var at = { clientX: box.left + LABEL + 20, clientY: box.top + ROW * 1.5, bubbles: true };
    scroller.dispatchEvent(new MouseEvent("mousemove", at));
    var hover = { shown: !tooltip.hidden, text: tooltip.textContent };
    scroller.dispatchEvent(new MouseEvent("click", at));
    var pinned = $("details").textContent;
    var out = [];
    for (var row = 0; row < N; row++) {
      var d = drawnRows[row];
      out.push(d ? {
        row: row, id: D.id[row], parent_id: D.pid[row] || null, parent_row: D.parent[row],
        depth: D.depth[row], name: D.names[D.name[row]], actor: D.tracks[D.track[row]],
        failed: D.err[row] !== null, x0: Math.round(d.x0), x1: Math.round(d.x1)
      } : null);
    }
    var report = $("selftest");
    report.textContent = JSON.stringify({
      spans: N, rows: out, lanes_drawn: lanesDrawn, tracks: D.tracks,
      attributes: attributes, profile_rows: $("profile").tBodies[0].rows.length,
      zoom_factor: zoomed, hover: hover, pinned: pinned, errors: errors
    });
    report.hidden = false;
  }
})();
