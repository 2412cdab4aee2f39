/* PicInspector report page: toolbar (sort, filters, view, overlays), shoot summary, gallery, table,
 * errors. Used as it is by the offline HTML report and by the web page of `picinspector serve`
 * (which adds rows as they are analysed, through app.addRows).
 *
 * Data: {meta: {title, engine, version, generated, source, units, note}, rows: [row, ...], extra: {}}
 * Sections registered in PicInspector.sections are drawn between the summary and the gallery.
 */
(function (global) {
  "use strict";

  var PI = global.PicInspector;
  var el = PI.el;

  var SORTS = [["order", "file order"], ["name", "name"]].concat(
    PI.SCORES.map(function (k) { return [k, k]; }),
    [["severity", "worst finding"], ["findings", "number of findings"], ["scene", "scene"]]);

  function sortValue(row, key, index) {
    if (key === "order") return index;
    if (key === "name") return PI.baseName(row.path).toLowerCase();
    if (key === "severity") return PI.worstSeverity(row);
    if (key === "findings") return (row.findings || []).length;
    if (key === "scene") return (row.scene && row.scene.label) || "";
    var v = row.scores && row.scores[key];
    return typeof v === "number" ? v : null;
  }

  function ReportApp(root, data) {
    this.root = root;
    this.meta = data.meta || {};
    this.extra = data.extra || {};
    this.rows = [];      // analysed rows
    this.errors = [];    // error rows
    this.state = {sort: this.meta.sort || "order", desc: false, scene: "", kind: "", severity: "",
                  score: "quality", min: 0, max: 100, text: "", view: "gallery", focus: false, clip: false};
    this.cards = [];     // one shell per analysed row, filled when it nears the viewport
    this.build();
    this.addRows(data.rows || []);
  }

  ReportApp.prototype.build = function () {
    var self = this, meta = this.meta;
    var header = el("header", {"class": "page-head"}, [
      el("h1", {text: meta.title || "PicInspector report"}),
      el("p", {"class": "meta muted", id: "meta-line", text: [
        meta.source, meta.engine ? "engine " + meta.engine : null,
        meta.version ? "PicInspector " + meta.version : null, meta.generated].filter(Boolean).join(" · ")}),
    ]);
    if (meta.note) header.appendChild(el("p", {"class": "note", text: meta.note}));
    this.root.appendChild(header);
    if (this.meta.upload) this.root.appendChild(el("div", {id: "upload"}));

    // toolbar
    function select(id, options, value, onchange, title) {
      var s = el("select", {id: id, title: title});
      options.forEach(function (o) { s.appendChild(el("option", {value: o[0], text: o[1]})); });
      s.value = value;
      s.addEventListener("change", function () { onchange(s.value); });
      return s;
    }
    var st = this.state;
    this.sceneSelect = select("filter-scene", [["", "all scenes"]], "", function (v) { st.scene = v; self.apply(); },
                              "Only photos of this scene");
    this.kindSelect = select("filter-kind", [["", "any finding"]], "", function (v) { st.kind = v; self.apply(); },
                             "Only photos with this finding");
    var sevOptions = [["", "any severity"]].concat(PI.SEVERITIES.slice(1).map(function (s) {
      return [s, s === "severe" ? "severe" : s + " or worse"]; }));
    var sevSelect = select("filter-severity", sevOptions, "", function (v) { st.severity = v; self.apply(); },
                           "Only photos with a finding at least this severe");
    var sortSelect = select("sort", SORTS, st.sort, function (v) { st.sort = v; self.apply(); }, "Sort by");
    var dir = el("button", {type: "button", id: "sort-dir", title: "Ascending / descending", text: "↑ asc"});
    dir.addEventListener("click", function () {
      st.desc = !st.desc;
      dir.textContent = st.desc ? "↓ desc" : "↑ asc";
      self.apply();
    });
    var scoreSelect = select("filter-score", PI.SCORES.map(function (k) { return [k, k]; }), st.score,
                             function (v) { st.score = v; self.apply(); }, "Score to limit");
    function number(id, value, key) {
      var input = el("input", {id: id, type: "number", min: 0, max: 100, step: 1, value: value, "class": "num"});
      input.addEventListener("input", function () {
        var v = parseFloat(input.value);
        st[key] = isNaN(v) ? (key === "min" ? 0 : 100) : v;
        self.apply();
      });
      return input;
    }
    var search = el("input", {id: "filter-text", type: "search", placeholder: "file name", "class": "text"});
    search.addEventListener("input", function () { st.text = search.value.toLowerCase(); self.apply(); });
    var views = el("span", {"class": "seg"});
    ["gallery", "table"].forEach(function (v) {
      var b = el("button", {type: "button", id: "view-" + v, "aria-pressed": String(v === st.view), text: v});
      b.addEventListener("click", function () { self.setView(v); });
      views.appendChild(b);
    });
    var overlays = el("span", {"class": "seg"});
    [["focus", "Focus map"], ["clip", "Clipping"]].forEach(function (o) {
      var b = el("button", {type: "button", id: "overlay-" + o[0], "aria-pressed": "false", text: o[1],
                            title: o[0] === "focus" ? "Tint every photo: green sharp, red soft"
                                                    : "Mark clipped highlights (red) and crushed shadows (blue)"});
      b.addEventListener("click", function () { self.setOverlay(o[0], !st[o[0]]); });
      overlays.appendChild(b);
    });
    this.countLine = el("span", {id: "count", "class": "muted"});
    this.root.appendChild(el("nav", {"class": "toolbar"}, [
      el("label", null, ["Sort ", sortSelect]), dir,
      el("label", null, ["Scene ", this.sceneSelect]),
      el("label", null, ["Finding ", this.kindSelect]),
      sevSelect,
      el("label", null, [scoreSelect, " ", number("filter-min", 0, "min"), "–", number("filter-max", 100, "max")]),
      search, views, overlays, this.countLine,
    ]));

    this.summary = el("section", {id: "summary", "class": "summary"});
    this.root.appendChild(this.summary);
    this.extraSections = PI.sections.map(function (section) {
      var node = el("section", {id: section.id, "class": "extra-section"});
      self.root.appendChild(node);
      return {section: section, node: node};
    });
    this.gallery = el("main", {id: "gallery", "class": "gallery"});
    this.table = el("section", {id: "table", "class": "table-view", hidden: true});
    this.errorsNode = el("section", {id: "errors", "class": "errors", hidden: true});
    this.root.appendChild(this.gallery);
    this.root.appendChild(this.table);
    this.root.appendChild(this.errorsNode);

    this.observer = "IntersectionObserver" in global ? new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) self.fill(entry.target);
      });
    }, {rootMargin: "800px 0px"}) : null;
  };

  /** Add result rows (analysed or error rows); the page is updated. */
  ReportApp.prototype.addRows = function (rows) {
    var self = this;
    rows.forEach(function (row) {
      if (row.error) { self.errors.push(row); return; }
      var index = self.rows.length;
      self.rows.push(row);
      var shell = el("article", {"class": "card shell", "data-index": index, "data-path": row.path || ""});
      shell._row = row;
      self.cards.push(shell);
      self.gallery.appendChild(shell);
      if (self.observer) self.observer.observe(shell); else self.fill(shell);
    });
    this.refreshChoices();
    this.tableBuilt = false;
    this.apply();
  };

  /** Fill a shell with its card (once). */
  ReportApp.prototype.fill = function (shell) {
    if (!shell.classList.contains("shell")) return;
    var card;
    try {
      card = PI.renderCard(shell._row, {units: this.meta.units});
    } catch (error) {  // one odd row must not stop the page; the console says what happened
      console.error("PicInspector: could not draw the card of " + shell._row.path + ": " + error);
      card = el("article", {"class": "card"}, [el("header", null, el("h3", {"class": "name",
        text: PI.baseName(shell._row.path)})), el("p", {"class": "note", text: "This card could not be drawn: " + error})]);
    }
    shell.classList.remove("shell");
    shell.className = card.className;
    while (card.firstChild) shell.appendChild(card.firstChild);
    Array.prototype.forEach.call(card.attributes, function (a) {
      if (a.name !== "class") shell.setAttribute(a.name, a.value);
    });
    var figure = shell.querySelector("figure.photo");
    if (figure) {
      if (this.state.focus) PI.setOverlay(figure, "focus", true);
      if (this.state.clip) PI.setOverlay(figure, "clip", true);
    }
    if (this.observer) this.observer.unobserve(shell);
  };

  ReportApp.prototype.refreshChoices = function () {
    var scenes = {}, kinds = {};
    this.rows.forEach(function (row) {
      if (row.scene && row.scene.label) scenes[row.scene.label] = (scenes[row.scene.label] || 0) + 1;
      (row.findings || []).forEach(function (f) { kinds[f.kind] = (kinds[f.kind] || 0) + 1; });
    });
    function fill(select, counts, first) {
      var value = select.value;
      while (select.options.length > 1) select.remove(1);
      Object.keys(counts).sort().forEach(function (k) {
        select.appendChild(el("option", {value: k, text: PI.label(k) + " (" + counts[k] + ")"}));
      });
      select.value = value in counts ? value : "";
      return first;
    }
    fill(this.sceneSelect, scenes);
    fill(this.kindSelect, kinds);
  };

  ReportApp.prototype.matches = function (row) {
    var st = this.state;
    if (st.scene && !(row.scene && row.scene.label === st.scene)) return false;
    if (st.kind && !(row.findings || []).some(function (f) { return f.kind === st.kind; })) return false;
    if (st.severity && PI.worstSeverity(row) < PI.SEVERITIES.indexOf(st.severity)) return false;
    if (st.min > 0 || st.max < 100) {
      var v = row.scores && row.scores[st.score];
      if (typeof v !== "number" || v < st.min || v > st.max) return false;
    }
    if (st.text && PI.baseName(row.path).toLowerCase().indexOf(st.text) < 0) return false;
    return true;
  };

  /** The analysed rows' indices that pass the filters, in the chosen order. */
  ReportApp.prototype.order = function () {
    var self = this, st = this.state, key = st.sort;
    var idx = [];
    this.rows.forEach(function (row, i) { if (self.matches(row)) idx.push(i); });
    var values = {};
    idx.forEach(function (i) { values[i] = sortValue(self.rows[i], key, i); });
    idx.sort(function (a, b) {
      var va = values[a], vb = values[b];
      if (va === vb) return a - b;
      if (va === null) return 1;    // no value: last either way
      if (vb === null) return -1;
      var c = va < vb ? -1 : 1;
      return st.desc ? -c : c;
    });
    return idx;
  };

  ReportApp.prototype.apply = function () {
    var self = this, shown = this.order(), visible = {};
    shown.forEach(function (i) { visible[i] = true; });
    var frag = document.createDocumentFragment();
    shown.forEach(function (i) { frag.appendChild(self.cards[i]); });
    this.cards.forEach(function (card, i) { if (!visible[i]) { card.hidden = true; frag.appendChild(card); } });
    this.gallery.appendChild(frag);
    shown.forEach(function (i) { self.cards[i].hidden = false; });
    this.shown = shown;
    this.countLine.textContent = "showing " + shown.length + " of " + this.rows.length + " photos" +
      (this.errors.length ? " (" + this.errors.length + " could not be analysed)" : "");
    this.drawSummary(shown.map(function (i) { return self.rows[i]; }));
    this.extraSections.forEach(function (x) {
      x.node.textContent = "";
      var out = x.section.render(shown.map(function (i) { return self.rows[i]; }), self);
      if (out) x.node.appendChild(out);
      x.node.hidden = !out;
    });
    if (this.state.view === "table") this.drawTable();
    this.drawErrors();
  };

  ReportApp.prototype.setView = function (view) {
    this.state.view = view;
    this.gallery.hidden = view !== "gallery";
    this.table.hidden = view !== "table";
    ["gallery", "table"].forEach(function (v) {
      document.getElementById("view-" + v).setAttribute("aria-pressed", String(v === view));
    });
    this.apply();
  };

  ReportApp.prototype.setOverlay = function (which, on) {
    this.state[which] = on;
    document.getElementById("overlay-" + which).setAttribute("aria-pressed", String(on));
    this.gallery.querySelectorAll("figure.photo").forEach(function (figure) { PI.setOverlay(figure, which, on); });
  };

  ReportApp.prototype.drawSummary = function (rows) {
    var node = this.summary;
    node.textContent = "";
    node.appendChild(el("h2", {text: "Shoot summary"}));
    var q = rows.map(function (r) { return r.scores && r.scores.quality; }).filter(function (v) {
      return typeof v === "number"; }).sort(function (a, b) { return a - b; });
    var median = q.length ? (q.length % 2 ? q[(q.length - 1) / 2] : (q[q.length / 2 - 1] + q[q.length / 2]) / 2) : null;
    var severe = rows.filter(function (r) { return PI.worstSeverity(r) === 3; }).length;
    node.appendChild(el("p", {"class": "totals"}, [
      el("strong", {text: String(rows.length)}), " photos",
      median === null ? "" : " · median quality ", median === null ? "" : el("strong", {text: PI.fmt(median)}),
      " · ", el("strong", {text: String(severe)}), " with a severe finding",
      this.errors.length ? " · " + this.errors.length + " could not be analysed" : "",
    ]));
    var hists = el("div", {"class": "hists"});
    PI.SCORES.forEach(function (k) {
      var values = rows.map(function (r) { return r.scores && r.scores[k]; });
      hists.appendChild(el("figure", {"class": "hist", "data-score": k}, [
        PI.histogram(values, {title: k + " distribution"}), el("figcaption", {text: k})]));
    });
    node.appendChild(hists);
    var kinds = {}, worst = {}, scenes = {};
    rows.forEach(function (r) {
      (r.findings || []).forEach(function (f) {
        kinds[f.kind] = (kinds[f.kind] || 0) + 1;
        worst[f.kind] = Math.max(worst[f.kind] === undefined ? -1 : worst[f.kind], PI.SEVERITIES.indexOf(f.severity));
      });
      if (r.scene && r.scene.label) scenes[r.scene.label] = (scenes[r.scene.label] || 0) + 1;
    });
    var kindItems = Object.keys(kinds).sort(function (a, b) { return kinds[b] - kinds[a] || (a < b ? -1 : 1); })
      .map(function (k) {
        return {label: PI.label(k), key: k, value: kinds[k], className: "sev-" + (PI.SEVERITIES[worst[k]] || "unknown")};
      });
    var sceneItems = PI.SCENES.filter(function (k) { return scenes[k]; }).map(function (k) {
      return {label: PI.label(k), key: k, value: scenes[k]}; });
    node.appendChild(el("div", {"class": "counts"}, [
      el("figure", {"class": "count-chart", id: "finding-counts"}, [
        el("figcaption", {text: "Photos per finding (colour: worst severity seen)"}),
        kindItems.length ? PI.bars(kindItems, {labelWidth: 150, barWidth: 160, title: "Findings per kind"})
                         : el("p", {"class": "muted", text: "no findings"})]),
      el("figure", {"class": "count-chart", id: "scene-counts"}, [
        el("figcaption", {text: "Photos per scene"}),
        sceneItems.length ? PI.bars(sceneItems, {labelWidth: 80, barWidth: 160, title: "Photos per scene"})
                          : el("p", {"class": "muted", text: "no scenes"})]),
    ]));
  };

  ReportApp.prototype.drawTable = function () {
    var self = this, st = this.state;
    this.table.textContent = "";
    var head = el("tr");
    var cols = [["name", "photo"]].concat(PI.SCORES.map(function (k) { return [k, k]; }),
                                          [["scene", "scene"], ["severity", "findings"]]);
    cols.forEach(function (c) {
      var th = el("th", {"data-key": c[0], "class": st.sort === c[0] ? "sorted " + (st.desc ? "desc" : "asc") : "",
                         title: "Sort by " + c[1], text: c[1]});
      th.addEventListener("click", function () {
        if (st.sort === c[0]) st.desc = !st.desc; else { st.sort = c[0]; st.desc = PI.SCORES.indexOf(c[0]) >= 0; }
        document.getElementById("sort").value = st.sort;
        document.getElementById("sort-dir").textContent = st.desc ? "↓ desc" : "↑ asc";
        self.apply();
      });
      head.appendChild(th);
    });
    var body = el("tbody");
    this.shown.forEach(function (i) {
      var row = self.rows[i], scores = row.scores || {};
      var tr = el("tr", {"data-index": i});
      var name = el("td", {"class": "name"}, [
        row.view && row.view.thumb ? el("img", {src: row.view.thumb, alt: "", loading: "lazy", "class": "mini"}) : null,
        el("span", {text: PI.baseName(row.path), title: row.path || ""})]);
      tr.appendChild(name);
      PI.SCORES.forEach(function (k) {
        tr.appendChild(el("td", {"class": "num band-" + PI.band(scores[k]), text: PI.fmt(scores[k], 1)}));
      });
      tr.appendChild(el("td", {text: row.scene ? PI.label(row.scene.label) : ""}));
      tr.appendChild(el("td", {"class": "kinds"}, (row.findings || []).map(function (f) {
        return el("span", {"class": "chip sev-" + f.severity, text: PI.label(f.kind), title: f.message || ""});
      })));
      tr.addEventListener("click", function () {
        self.setView("gallery");
        var card = self.cards[i];
        self.fill(card);
        card.scrollIntoView({block: "start"});
      });
      body.appendChild(tr);
    });
    this.table.appendChild(el("table", {"class": "results"}, [el("thead", null, head), body]));
  };

  ReportApp.prototype.drawErrors = function () {
    var node = this.errorsNode;
    node.textContent = "";
    node.hidden = !this.errors.length;
    if (!this.errors.length) return;
    node.appendChild(el("h2", {text: "Could not be analysed (" + this.errors.length + ")"}));
    var list = el("ul");
    this.errors.forEach(function (row) {
      list.appendChild(el("li", null, [el("code", {text: row.path || "(no name)"}), " ",
        el("span", {"class": "chip", text: row.error.kind || "error"}), " ", row.error.message || ""]));
    });
    node.appendChild(list);
  };

  PI.ReportApp = ReportApp;

  PI.start = function () {
    var source = document.getElementById("picinspector-data");
    var data = source ? JSON.parse(source.textContent) : {meta: {}, rows: []};
    PI.app = new ReportApp(document.getElementById("app"), data);
    (PI.onReady || []).forEach(function (hook) { hook(PI.app); });
    document.body.setAttribute("data-ready-ms", String(Math.round(global.performance ? performance.now() : 0)));
    document.body.setAttribute("data-ready", "true");
    return PI.app;
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", PI.start);
  else PI.start();
})(window);
