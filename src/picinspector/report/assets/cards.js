/* PicInspector report cards: one photo's scores, scene, findings, feedback, EXIF and overlays.
 *
 * Shared by the offline HTML report (`picinspector report`) and the web page of `picinspector serve`.
 * No library, no network: every chart is SVG built here. All text from a result goes in through
 * textContent, never as HTML.
 *
 * A card is built from one result row (the `analyze --json` schema) plus, optionally, `row.view`:
 *   {thumb: URL, w, h, clip: URL of a PNG mask (red = clipped highlights, blue = crushed shadows),
 *    focus: {rows, cols, grid: [[0-1 or null]]}, checked: overlays computed, href: link to the original,
 *    missing: why there is no thumbnail}
 *
 * Extension points (for later features such as burst groups):
 *   PicInspector.badges.push(function (row) { return element or null; })   // per-card badges
 *   PicInspector.sections.push({id, title, render(rows, app) -> element})  // report sections
 */
(function (global) {
  "use strict";

  var PI = global.PicInspector = global.PicInspector || {};
  var SVG_NS = "http://www.w3.org/2000/svg";

  PI.SCORES = ["quality", "brightness", "colorfulness", "contrast", "noisiness", "sharpness"];
  PI.SCENES = ["animal", "cityscape", "human", "indoor", "landscape", "night", "plant", "still_life", "others"];
  PI.SEVERITIES = ["info", "minor", "moderate", "severe"];
  PI.badges = PI.badges || [];
  PI.sections = PI.sections || [];

  // ------------------------------------------------------------------------------------------
  // DOM helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.setAttribute("class", value);
      else if (key.slice(0, 2) === "on" && typeof value === "function") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    });
  }

  function append(node, children) {
    if (children === null || children === undefined) return;
    if (!Array.isArray(children)) children = [children];
    children.forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
  }

  PI.el = el;
  PI.svg = svg;

  // ------------------------------------------------------------------------------------------
  // Formatting

  function isNum(v) { return typeof v === "number" && isFinite(v); }

  /** Score band, as the terminal panel colours it: good >= 65, fair >= 40, else poor. */
  function band(v) { return !isNum(v) ? "na" : v >= 65 ? "good" : v >= 40 ? "fair" : "poor"; }

  function fmt(v, digits) { return isNum(v) ? v.toFixed(digits === undefined ? 0 : digits) : "n/a"; }

  function label(name) { return String(name).replace(/_/g, " "); }

  function baseName(path) {
    if (!path) return "(no name)";
    var parts = String(path).split(/[\\/]/);
    return parts[parts.length - 1] || String(path);
  }

  function shutter(s) {
    if (!isNum(s) || s <= 0) return null;
    if (s >= 0.5) return (Math.round(s * 10) / 10) + " s";
    return "1/" + Math.round(1 / s) + " s";
  }

  /** Worst severity of a row's findings, as an index into SEVERITIES (-1: none). */
  function worstSeverity(row) {
    var worst = -1;
    (row.findings || []).forEach(function (f) { worst = Math.max(worst, PI.SEVERITIES.indexOf(f.severity)); });
    return worst;
  }

  PI.band = band;
  PI.fmt = fmt;
  PI.label = label;
  PI.baseName = baseName;
  PI.worstSeverity = worstSeverity;

  // ------------------------------------------------------------------------------------------
  // Charts

  /** The radar chart of the six scores: six axes from the centre, rings at 25/50/75/100. */
  function radar(scores, opts) {
    opts = opts || {};
    // wide enough for "colorfulness 100" beside the left and right axes at 11 px
    var width = 320, height = 210, r = 68, cx = width / 2, cy = height / 2 + 2;
    var names = PI.SCORES, n = names.length;
    function point(i, value) {
      var a = -Math.PI / 2 + (2 * Math.PI * i) / n;
      var k = Math.max(0, Math.min(100, value)) / 100;
      return [cx + r * k * Math.cos(a), cy + r * k * Math.sin(a)];
    }
    var root = svg("svg", {"class": "radar", viewBox: "0 0 " + width + " " + height, role: "img",
                           "aria-label": "Radar chart of the six scores"});
    root.appendChild(svg("title", {text: names.map(function (k) {
      return label(k) + " " + fmt(scores[k], 1); }).join(", ")}));
    [25, 50, 75, 100].forEach(function (level) {
      var pts = names.map(function (_, i) { return point(i, level).join(","); }).join(" ");
      root.appendChild(svg("polygon", {"class": "radar-ring", points: pts}));
    });
    names.forEach(function (name, i) {
      var end = point(i, 100);
      root.appendChild(svg("line", {"class": "radar-axis", "data-score": name, x1: cx, y1: cy, x2: end[0], y2: end[1]}));
    });
    var shape = names.map(function (name, i) {
      return point(i, isNum(scores[name]) ? scores[name] : 0).join(",");
    }).join(" ");
    root.appendChild(svg("polygon", {"class": "radar-shape band-" + band(scores.quality), points: shape}));
    names.forEach(function (name, i) {
      var p = point(i, isNum(scores[name]) ? scores[name] : 0);
      root.appendChild(svg("circle", {"class": "radar-dot band-" + band(scores[name]), cx: p[0], cy: p[1], r: 2.6}));
      var a = -Math.PI / 2 + (2 * Math.PI * i) / n;
      var lx = cx + (r + 8) * Math.cos(a), ly = cy + (r + 8) * Math.sin(a);
      var anchor = Math.abs(Math.cos(a)) < 0.2 ? "middle" : Math.cos(a) > 0 ? "start" : "end";
      var text = svg("text", {"class": "radar-label", x: lx, y: ly + (Math.sin(a) > 0.5 ? 10 : Math.sin(a) < -0.5 ? -3 : 4),
                              "text-anchor": anchor});
      text.appendChild(svg("tspan", {text: label(name) + " "}));
      text.appendChild(svg("tspan", {"class": "radar-value band-" + band(scores[name]), text: fmt(scores[name])}));
      root.appendChild(text);
    });
    return root;
  }

  /** Horizontal bars: items = [{label, value (0-1 or a count), key, highlight}], max = the full length. */
  function bars(items, opts) {
    opts = opts || {};
    var rowH = opts.rowHeight || 15, labelW = opts.labelWidth || 62, barW = opts.barWidth || 84, valueW = 30;
    var width = labelW + barW + valueW, height = items.length * rowH + 2;
    var max = opts.max || Math.max.apply(null, items.map(function (it) { return it.value || 0; }).concat([1e-9]));
    var root = svg("svg", {"class": "bars " + (opts.className || ""), viewBox: "0 0 " + width + " " + height,
                           role: "img", "aria-label": opts.title || "bar chart"});
    if (opts.title) root.appendChild(svg("title", {text: opts.title}));
    items.forEach(function (it, i) {
      var y = i * rowH + 1, len = Math.max(0, Math.min(1, (it.value || 0) / max)) * barW;
      var g = svg("g", {"class": "bar" + (it.highlight ? " bar-top" : ""), "data-key": it.key || it.label});
      g.appendChild(svg("text", {"class": "bar-label", x: labelW - 4, y: y + rowH * 0.72, "text-anchor": "end",
                                 text: it.label}));
      g.appendChild(svg("rect", {"class": "bar-track", x: labelW, y: y + 2, width: barW, height: rowH - 4, rx: 2}));
      g.appendChild(svg("rect", {"class": "bar-fill " + (it.className || ""), x: labelW, y: y + 2,
                                 width: len.toFixed(1), height: rowH - 4, rx: 2}));
      g.appendChild(svg("text", {"class": "bar-value", x: labelW + barW + 4, y: y + rowH * 0.72,
                                 text: it.text !== undefined ? it.text : String(it.value)}));
      root.appendChild(g);
    });
    return root;
  }

  /** A histogram of 0-100 values in ten bins. */
  function histogram(values, opts) {
    opts = opts || {};
    var bins = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], w = 150, h = 54, bw = w / 10;
    values.forEach(function (v) { if (isNum(v)) bins[Math.min(9, Math.max(0, Math.floor(v / 10)))] += 1; });
    var max = Math.max.apply(null, bins.concat([1]));
    var root = svg("svg", {"class": "histogram", viewBox: "0 0 " + w + " " + (h + 12), role: "img",
                           "aria-label": opts.title || "histogram"});
    if (opts.title) root.appendChild(svg("title", {text: opts.title}));
    bins.forEach(function (count, i) {
      var bh = (count / max) * h;
      root.appendChild(svg("rect", {"class": "hist-bar band-" + band(i * 10 + 5), x: i * bw + 1, y: h - bh,
                                    width: bw - 2, height: bh, "data-count": count},
                           svg("title", {text: (i * 10) + "-" + (i * 10 + 10) + ": " + count})));
    });
    root.appendChild(svg("line", {"class": "hist-axis", x1: 0, y1: h + 0.5, x2: w, y2: h + 0.5}));
    ["0", "50", "100"].forEach(function (t, i) {
      root.appendChild(svg("text", {"class": "hist-tick", x: i * w / 2, y: h + 11,
                                    "text-anchor": i === 0 ? "start" : i === 2 ? "end" : "middle", text: t}));
    });
    return root;
  }

  PI.radar = radar;
  PI.bars = bars;
  PI.histogram = histogram;

  // ------------------------------------------------------------------------------------------
  // Overlays

  /** Focus-map tint: green where sharp, red where soft; tiles too flat to judge stay clear. */
  function focusOverlay(focus) {
    var rows = focus.rows, cols = focus.cols;
    var root = svg("svg", {"class": "overlay overlay-focus", viewBox: "0 0 " + cols + " " + rows,
                           preserveAspectRatio: "none", "aria-hidden": "true"});
    (focus.grid || []).forEach(function (line, i) {
      line.forEach(function (v, j) {
        if (!isNum(v)) return;
        var hue = Math.round(120 * Math.max(0, Math.min(1, v)));  // 0 red .. 120 green
        root.appendChild(svg("rect", {x: j, y: i, width: 1, height: 1, fill: "hsl(" + hue + ",85%,45%)",
                                      "class": "focus-tile", "data-focus": v.toFixed(2)}));
      });
    });
    return root;
  }

  function toggleButton(text, cls, figure, title) {
    var button = el("button", {type: "button", "class": "toggle " + cls, "aria-pressed": "false", title: title,
                               text: text});
    button.addEventListener("click", function () {
      var on = !figure.classList.contains("show-" + cls);
      setOverlay(figure, cls, on);
    });
    return button;
  }

  function setOverlay(figure, cls, on) {
    figure.classList.toggle("show-" + cls, on);
    var card = figure.closest(".card") || figure.parentNode;
    var button = card && card.querySelector("button.toggle." + cls);
    if (button) button.setAttribute("aria-pressed", on ? "true" : "false");
  }

  PI.setOverlay = setOverlay;

  function figureOf(row) {
    var view = row.view || {};
    var figure = el("figure", {"class": "photo"});
    var frame = el("div", {"class": "frame"});
    var ratio = view.w && view.h ? view.w / view.h : (row.width && row.height ? row.width / row.height : 1.5);
    frame.style.aspectRatio = String(ratio);
    if (view.thumb) {
      var img = el("img", {"class": "thumb", src: view.thumb, alt: baseName(row.path), decoding: "async",
                           width: view.w, height: view.h});
      frame.appendChild(view.href ? el("a", {href: view.href, target: "_blank", rel: "noopener",
                                             title: "Open the original photo"}, img) : img);
    } else {
      frame.appendChild(el("div", {"class": "no-thumb", text: view.missing || "no preview"}));
    }
    var tools = [];
    if (view.focus && view.focus.grid) {
      frame.appendChild(focusOverlay(view.focus));
      tools.push(toggleButton("Focus map", "focus", figure, "Green: sharp; red: soft; clear: too flat to judge"));
    }
    if (view.clip) {
      frame.appendChild(el("img", {"class": "overlay overlay-clip", src: view.clip, alt: "", "aria-hidden": "true"}));
      tools.push(toggleButton("Clipping", "clip", figure, "Red: clipped highlights; blue: crushed shadows"));
    } else if (view.checked) {
      tools.push(el("button", {type: "button", "class": "toggle clip", disabled: true,
                               title: "No clipped highlights or crushed shadows", text: "No clipping"}));
    }
    figure.appendChild(frame);
    if (tools.length) {
      figure.appendChild(el("figcaption", {"class": "tools"}, tools.concat([
        el("span", {"class": "legend legend-focus", text: "green sharp · red soft"}),
        el("span", {"class": "legend legend-clip", text: "red blown · blue crushed"})])));
    }
    return figure;
  }

  // ------------------------------------------------------------------------------------------
  // Card parts

  function scenePart(scene) {
    if (!scene || !scene.label) return null;
    var probs = scene.probabilities || {};
    var part = el("section", {"class": "scene"});
    var head = el("h4", null, ["Scene ", el("strong", {text: label(scene.label)})]);
    if (isNum(scene.confidence)) {
      head.appendChild(el("span", {"class": "muted", text: " " + scene.confidence.toFixed(2) +
                                   (scene.confidence < 0.4 ? " (weak guess)" : "")}));
    }
    if (scene.method) head.appendChild(el("span", {"class": "muted", text: " via " + scene.method}));
    part.appendChild(head);
    if (Object.keys(probs).length) {
      var items = PI.SCENES.filter(function (k) { return k in probs; }).map(function (k) {
        return {label: label(k), key: k, value: probs[k], text: fmt(probs[k] * 100) + "%",
                highlight: k === scene.label};
      });
      part.appendChild(bars(items, {max: 1, title: "Scene probabilities", className: "scene-bars"}));
    }
    return part;
  }

  function findingsPart(findings) {
    var part = el("section", {"class": "findings"});
    if (!findings || !findings.length) {
      part.appendChild(el("p", {"class": "muted", text: "No problems found."}));
      return part;
    }
    var list = el("ul");
    findings.forEach(function (f) {
      var sev = PI.SEVERITIES.indexOf(f.severity) >= 0 ? f.severity : "unknown";
      list.appendChild(el("li", {"class": "finding sev-" + sev, "data-kind": f.kind}, [
        el("span", {"class": "sev", text: f.severity || "?"}),
        el("span", {"class": "message", text: f.message || label(f.kind)}),
        f.suggestion ? el("span", {"class": "suggestion", text: "→ " + f.suggestion}) : null,
      ]));
    });
    part.appendChild(list);
    return part;
  }

  function exifPart(exif, row) {
    exif = exif || {};
    var items = [];
    var camera = [exif.make, exif.model].filter(Boolean).join(" ");
    if (camera) items.push(["Camera", camera]);
    if (exif.lens) items.push(["Lens", exif.lens]);
    var shot = [shutter(exif.exposure_time_s), isNum(exif.f_number) ? "f/" + exif.f_number : null,
                isNum(exif.iso) ? "ISO " + exif.iso : null,
                isNum(exif.focal_length_mm) ? exif.focal_length_mm + " mm" : null].filter(Boolean).join(" · ");
    if (shot) items.push(["Exposure", shot]);
    if (exif.datetime) items.push(["Taken", String(exif.datetime).replace("T", " ")]);
    items.push(["Image", (row.width || "?") + "×" + (row.height || "?") + " " + (row.format || "")]);
    var dl = el("dl", {"class": "exif"});
    items.forEach(function (kv) { dl.appendChild(el("dt", {text: kv[0]})); dl.appendChild(el("dd", {text: kv[1]})); });
    return dl;
  }

  var KEY_MEASURES = [
    ["exposure_ev", function (v) { return "exposure " + (v >= 0 ? "+" : "") + v.toFixed(1) + " EV"; }],
    ["highlights_clipped_pct", function (v) { return v.toFixed(1) + "% clipped"; }],
    ["shadows_crushed_pct", function (v) { return v.toFixed(1) + "% crushed"; }],
    ["noise_sigma", function (v) { return "noise σ " + v.toFixed(1); }],
    ["jpeg_quality", function (v) { return "JPEG q" + v.toFixed(0); }],
  ];

  function measuresPart(measures, units) {
    measures = measures || {};
    var keys = Object.keys(measures);
    if (!keys.length) return null;
    var line = KEY_MEASURES.filter(function (km) { return isNum(measures[km[0]]); })
      .map(function (km) { return km[1](measures[km[0]]); });
    if (measures.blur_kind) line.push("blur " + measures.blur_kind);
    var details = el("details", {"class": "measures"});
    details.appendChild(el("summary", {text: line.length ? line.join(" · ") : "measures"}));
    // the table is built when opened: 2,000 cards x 140 rows would slow the page for nothing
    details.addEventListener("toggle", function () {
      if (!details.open || details.querySelector("table")) return;
      var table = el("table");
      keys.forEach(function (k) {
        var v = measures[k];
        if (v !== null && typeof v === "object") return;
        var unit = units && units[k] ? units[k][0] : "";
        table.appendChild(el("tr", {title: units && units[k] ? units[k][1] : null}, [
          el("th", {text: k}), el("td", {text: isNum(v) ? String(+v.toPrecision(4)) : String(v)}),
          el("td", {"class": "muted", text: unit})]));
      });
      details.appendChild(table);
    }, {once: false});
    return details;
  }

  // ------------------------------------------------------------------------------------------
  // The card

  /** Build the card for one analysed row. opts: {units: {measure: [unit, description]}} */
  function renderCard(row, opts) {
    opts = opts || {};
    var scores = row.scores || {};
    var card = el("article", {"class": "card band-" + band(scores.quality), "data-path": row.path || "",
                              "data-quality": isNum(scores.quality) ? scores.quality : ""});
    var badges = el("div", {"class": "badges"});
    var worst = worstSeverity(row);
    if (worst >= 0) badges.appendChild(el("span", {"class": "badge sev-" + PI.SEVERITIES[worst],
                                                   text: PI.SEVERITIES[worst]}));
    PI.badges.forEach(function (make) {
      var badge = make(row);
      if (badge) badges.appendChild(badge);
    });
    card.appendChild(el("header", null, [
      el("span", {"class": "q band-" + band(scores.quality), title: "quality",
                  text: fmt(scores.quality)}),
      el("h3", {"class": "name", title: row.path || "", text: baseName(row.path)}),
      badges,
    ]));
    card.appendChild(figureOf(row));
    var body = el("div", {"class": "body"});
    body.appendChild(el("div", {"class": "charts"}, [radar(scores), scenePart(row.scene)]));
    body.appendChild(findingsPart(row.findings));
    if (row.feedback) body.appendChild(el("p", {"class": "feedback", text: row.feedback}));
    body.appendChild(exifPart(row.exif, row));
    append(body, measuresPart(row.measures, opts.units));
    card.appendChild(body);
    return card;
  }

  PI.renderCard = renderCard;
})(window);
