/* PicInspector report: the cull (`picinspector cull --report`, or `picinspector report cull.jsonl`).
 *
 * Registers, through the report's extension points (cards.js), a "Groups" section that draws every
 * group of near-duplicates as a strip of thumbnails with the pick marked, rejects dimmed and each
 * frame's rating and reason, and card badges (stars or "rejected", "pick", the group). Reads each
 * row's `cull` object (docs/cull.md, "Output"). All text goes in as textContent.
 */
(function (global) {
  "use strict";

  var PI = global.PicInspector;
  var el = PI.el;

  var STYLE = [
    "#cull-groups .cull-summary { margin: 0 0 10px; }",
    "#cull-groups .group { margin: 0 0 14px; }",
    "#cull-groups .group h3 { font-size: 13px; margin: 0 0 4px; font-weight: 600; }",
    "#cull-groups .group h3 .muted { font-weight: 400; }",
    "#cull-groups .strip { display: flex; gap: 8px; overflow-x: auto; padding: 2px 2px 6px; }",
    "#cull-groups .frame-tile { flex: none; width: 150px; border: 3px solid transparent; border-radius: 8px;",
    "  background: #fff; cursor: pointer; padding: 0 0 4px; position: relative; }",
    "#cull-groups .frame-tile img { display: block; width: 100%; height: 104px; object-fit: cover; border-radius: 5px 5px 0 0;",
    "  background: #1b1e24; }",
    "#cull-groups .frame-tile .none { height: 104px; display: flex; align-items: center; justify-content: center;",
    "  color: #aab; background: #1b1e24; font-size: 11px; border-radius: 5px 5px 0 0; }",
    "#cull-groups .frame-tile.pick { border-color: var(--good); box-shadow: 0 0 0 1px var(--good); }",
    "#cull-groups .frame-tile.reject img, #cull-groups .frame-tile.reject .none { opacity: .45; filter: grayscale(.6); }",
    "#cull-groups .frame-tile .tag { position: absolute; top: 4px; left: 4px; font-size: 11px; font-weight: 700;",
    "  padding: 1px 6px; border-radius: 8px; color: #fff; background: var(--good); }",
    "#cull-groups .frame-tile.reject .tag { background: var(--poor); }",
    "#cull-groups .frame-tile .cap { font-size: 11px; padding: 3px 5px 0; white-space: nowrap; overflow: hidden;",
    "  text-overflow: ellipsis; }",
    "#cull-groups .frame-tile .stars { color: #c98a00; letter-spacing: 1px; }",
    "#cull-groups .frame-tile.reject .stars { color: var(--poor); letter-spacing: 0; }",
    "#cull-groups .frame-tile .why { font-size: 11px; color: var(--muted); padding: 1px 5px 0; line-height: 1.25;",
    "  display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; }",
    "#cull-groups .pick-reason { font-size: 12px; margin: 0; }",
    ".cull-badges { display: inline-flex; gap: 4px; flex-wrap: wrap; }",
    ".badge.cull-stars { background: #c98a00; }",
    ".badge.cull-reject { background: var(--poor); }",
    ".badge.cull-pick { background: var(--good); }",
    ".badge.cull-group { background: #5b6472; }",
  ].join("\n");

  function stars(rating) {
    if (rating < 0) return "rejected";
    var out = "";
    for (var i = 0; i < 5; i++) out += i < rating ? "★" : "☆";
    return out;
  }

  function addStyle() {
    if (document.getElementById("cull-style")) return;
    var style = document.createElement("style");
    style.id = "cull-style";
    style.textContent = STYLE;
    document.head.appendChild(style);
  }

  function jumpTo(app, row) {
    var index = app.rows.indexOf(row);
    if (index < 0) return;
    if (app.state.view !== "gallery") app.setView("gallery");
    var card = app.cards[index];
    app.fill(card);
    card.scrollIntoView({block: "start"});
  }

  function tile(row, app) {
    var c = row.cull, reject = c.status === "reject";
    var cls = "frame-tile" + (c.pick ? " pick" : "") + (reject ? " reject" : "");
    var picture = row.view && row.view.thumb
      ? el("img", {src: row.view.thumb, alt: PI.baseName(row.path), loading: "lazy"})
      : el("div", {"class": "none", text: (row.view && row.view.missing) || "no preview"});
    var node = el("figure", {"class": cls, "data-path": row.path || "", title: c.reason || "",
                             "data-status": c.status, "data-rating": c.rating}, [
      picture,
      c.pick ? el("span", {"class": "tag", text: "pick"}) : (reject ? el("span", {"class": "tag", text: "reject"}) : null),
      el("figcaption", {"class": "cap"}, [el("span", {"class": "stars", text: stars(c.rating)}), " ",
                                         PI.baseName(row.path)]),
      el("div", {"class": "why", text: c.reason || ""}),
    ]);
    node.style.margin = "0";
    node.addEventListener("click", function () { jumpTo(app, row); });
    return node;
  }

  PI.sections.push({
    id: "cull-groups",
    title: "Groups",
    render: function (rows, app) {
      var culled = rows.filter(function (r) { return r.cull && r.cull.group; });
      if (!culled.length) return null;
      var groups = {}, order = [];
      culled.forEach(function (r) {
        var g = r.cull.group;
        if (!groups[g]) { groups[g] = []; order.push(g); }
        groups[g].push(r);
      });
      order.sort();
      var multi = order.filter(function (g) { return groups[g].length > 1; });
      var count = {keep: 0, pick: 0, alternate: 0, reject: 0};
      culled.forEach(function (r) { count[r.cull.status] = (count[r.cull.status] || 0) + 1; });
      var section = el("div", null, [
        el("h2", {text: "Groups: bursts and near-duplicates"}),
        el("p", {"class": "cull-summary"}, [
          el("strong", {text: String(multi.length)}), " groups of near-duplicates (",
          String(multi.reduce(function (n, g) { return n + groups[g].length; }, 0)), " photos) · ",
          String(order.length - multi.length), " photos with no near-duplicate · ",
          el("strong", {text: String(count.keep)}), " kept (3-5 stars) · ", String(count.pick), " picks below the cut · ",
          String(count.alternate), " alternates · ", el("strong", {text: String(count.reject)}), " rejected",
        ]),
      ]);
      multi.forEach(function (g) {
        // in shooting order (capture time, then the shoot's order), as a film strip; the pick is marked
        var members = groups[g].slice().sort(function (a, b) {
          var ta = (a.exif && a.exif.datetime) || "", tb = (b.exif && b.exif.datetime) || "";
          if (ta !== tb) return ta < tb ? -1 : 1;
          return app.rows.indexOf(a) - app.rows.indexOf(b);
        });
        var pick = members.filter(function (r) { return r.cull.pick; })[0] || members[0];
        var kind = pick.cull.burst ? "burst of " + pick.cull.group_size : pick.cull.group_size + " near-identical frames";
        var strip = el("div", {"class": "strip"});
        members.forEach(function (r) { strip.appendChild(tile(r, app)); });
        section.appendChild(el("div", {"class": "group", "data-group": g}, [
          el("h3", null, [g + " ", el("span", {"class": "muted", text: "· " + kind +
            (members.length < pick.cull.group_size ? " (" + members.length + " shown)" : "")})]),
          strip,
          el("p", {"class": "pick-reason"}, [el("strong", {text: "Pick: " + PI.baseName(pick.path) + " "}),
                                              "— " + (pick.cull.reason || "")]),
        ]));
      });
      return section;
    },
  });

  addStyle();

  PI.badges.push(function (row) {
    var c = row.cull;
    if (!c || typeof c.rating !== "number") return null;
    var box = el("span", {"class": "cull-badges"});
    box.appendChild(el("span", {"class": "badge " + (c.rating < 0 ? "cull-reject" : "cull-stars"),
                                title: c.reason || "", text: stars(c.rating)}));
    if (c.pick && c.group_size > 1) box.appendChild(el("span", {"class": "badge cull-pick", title: c.reason || "", text: "pick"}));
    if (c.group_size > 1) box.appendChild(el("span", {"class": "badge cull-group",
      title: "group " + c.group + ": rank " + c.group_rank + " of " + c.group_size, text: c.group + " · " + c.group_rank + "/" + c.group_size}));
    return box;
  });
})(window);
