"""Ranking, picks, rejects and star ratings, each with its reason in words.

Every photo gets a *cull score* (0-100): its quality score less a penalty for each family of
technical problems its findings name (focus, noise, exposure, other; the worst finding of a family
counts, `FAMILIES`). Within each group the highest cull score is the *pick* (ties: the sharper, then
the earlier frame). Then, per photo, one *status* and its rating (`RatingOptions`, docs/cull.md):

========== ====== ================================================================================
status     rating when
========== ====== ================================================================================
reject     -1     a severe finding of a failure kind (`REJECT_KINDS`), a cull score under
                  ``reject_below``, or, beside a pick, a moderate or severe focus, noise or exposure
                  problem that the pick does not have (the misfires of a burst)
keep       3-5    a pick among the best ``keep`` of the shoot; the top 10% of those 5, the next 30% 4
pick       2      the best of its group, below the ``keep`` cut
alternate  1      a near-duplicate of a better frame
========== ====== ================================================================================
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["FAMILIES", "REJECT_KINDS", "Decision", "RatingOptions", "STATUSES", "cull_score", "decide", "parse_keep"]


@dataclass(frozen=True)
class Family:
    """A family of technical problems: its finding kinds, the cull-score penalty per severity, and
    the words for the reasons."""

    kinds: tuple[str, ...]
    penalty: dict[str, float]
    good: str           # "the frame 0.4 s later is <good>"
    best: str           # "<best> of 5 near-identical frames"
    better: str         # "near-identical to X, which is <better>"
    attribute: str | None = None  # the score that measures it (tie-breaks, margins)


#: Problem families, by name. A finding kind that no family lists counts as "other".
FAMILIES: dict[str, Family] = {
    "focus": Family(("motion_blur", "defocus_blur", "soft", "no_detail"),
                    {"minor": 3, "moderate": 8, "severe": 20}, "sharp", "sharpest", "sharper", "sharpness"),
    "noise": Family(("noise",), {"minor": 2, "moderate": 5, "severe": 10}, "clean", "cleanest", "cleaner",
                    "noisiness"),
    "exposure": Family(("underexposed", "overexposed", "clipped_highlights", "crushed_shadows"),
                       {"minor": 2, "moderate": 5, "severe": 12}, "well exposed", "best exposed", "better exposed"),
    "compression": Family(("compression",), {"minor": 2, "moderate": 5, "severe": 10},
                          "free of compression artefacts", "least compressed", "less compressed"),
    "other": Family((), {"minor": 1, "moderate": 2, "severe": 4}, "better", "best", "better"),
}
_FAMILY_OF = {kind: name for name, fam in FAMILIES.items() for kind in fam.kinds}

#: Finding kinds that reject a photo when severe (a misfire, whatever else the frame has).
REJECT_KINDS: tuple[str, ...] = ("motion_blur", "defocus_blur", "soft", "no_detail", "underexposed", "overexposed")

#: Short words for a finding kind in a reason ("motion blur; the frame 0.4 s later is sharp").
_PROBLEM_WORDS = {
    "motion_blur": "motion blur", "defocus_blur": "out of focus", "soft": "soft", "no_detail": "no detail",
    "noise": "visible noise", "underexposed": "under-exposed", "overexposed": "over-exposed",
    "compression": "heavy compression",
    "clipped_highlights": "clipped highlights", "crushed_shadows": "crushed shadows",
}

#: The statuses, best first, with their default star rating (keeps get 3, 4 or 5).
STATUSES: dict[str, int] = {"keep": 3, "pick": 2, "alternate": 1, "reject": -1}
_SEVERITY_RANK = {"info": 0, "minor": 1, "moderate": 2, "severe": 3}


def _problem(kind: str) -> str:
    return _PROBLEM_WORDS.get(kind, kind.replace("_", " "))


def _findings(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in (row.get("findings") or []) if isinstance(f, dict) and isinstance(f.get("kind"), str)]


def _family_penalties(row: dict[str, Any]) -> dict[str, tuple[float, dict[str, Any] | None]]:
    """Per family: (penalty of its worst finding, that finding)."""
    out: dict[str, tuple[float, dict[str, Any] | None]] = {name: (0.0, None) for name in FAMILIES}
    for f in _findings(row):
        fam = _FAMILY_OF.get(f["kind"], "other")
        p = float(FAMILIES[fam].penalty.get(f.get("severity") or "", 0.0))
        if p > out[fam][0]:
            out[fam] = (p, f)
    return out


def cull_score(row: dict[str, Any]) -> float:
    """A photo's cull score, 0-100: ``quality`` less the worst finding's penalty in each family
    (`FAMILIES`). A row without a quality score gets 0."""
    q = (row.get("scores") or {}).get("quality")
    if not isinstance(q, (int, float)) or not math.isfinite(q):
        return 0.0
    return float(min(100.0, max(0.0, q - sum(p for p, _ in _family_penalties(row).values()))))


def parse_keep(text: str | float | int) -> float | int:
    """``"20%"`` -> 0.2 (a share of the shoot); ``"150"`` -> 150 (a count); ValueError otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value: float | int = text
    else:
        s = str(text).strip()
        try:
            value = float(s[:-1]) / 100 if s.endswith("%") else int(s)
        except ValueError:
            raise ValueError(f"--keep takes a share such as 20% or a count such as 150, got {text!r}") from None
    if isinstance(value, float) and not 0 <= value <= 1:
        raise ValueError(f"a --keep share must be between 0% and 100%, got {text!r}")
    if isinstance(value, int) and value < 0:
        raise ValueError(f"a --keep count must be >= 0, got {text!r}")
    return value


@dataclass(frozen=True)
class RatingOptions:
    """How statuses and stars are given (the CLI's ``--keep``, ``--reject-below``, ``--reject-on``,
    ``--labels``).

    keep : float or int
        A share of the shoot (0-1) or a count: that many of the best picks are kept (3-5 stars).
    reject_below : float
        A cull score under this rejects the photo.
    reject_on : tuple of str
        Finding kinds that reject a photo when severe.
    five, four : float
        Shares of the kept photos that get 5 and then 4 stars (the rest of the kept get 3).
    exposure_weight : float
        Within a group: cull points taken per EV that a frame's exposure (``measures.exposure_ev``)
        lies from the group's median (frames of a burst share one exposure; of a bracket, the middle
        one is the metered frame).
    typical_weight : float
        Within a group: cull points taken per unit of a frame's mean signature distance to the others
        (in units of the ``near`` threshold): among frames equally good, the one most like the rest.
    labels : dict
        ``xmp:Label`` per status (absent or None: no label).
    """

    keep: float | int = 0.2
    reject_below: float = 25.0
    exposure_weight: float = 20.0
    typical_weight: float = 10.0
    reject_on: tuple[str, ...] = REJECT_KINDS
    five: float = 0.1
    four: float = 0.3
    labels: dict[str, str | None] = field(default_factory=lambda: {"keep": "Green", "reject": "Red"})

    def keep_count(self, n: int) -> int:
        return min(n, self.keep if isinstance(self.keep, int) else int(round(self.keep * n)))

    def keep_words(self) -> str:
        return f"the top {self.keep * 100:g}%" if isinstance(self.keep, float) else f"the best {self.keep}"


@dataclass
class Decision:
    """What the cull says about one photo."""

    index: int
    group: int
    group_size: int
    group_rank: int         # 1 = the pick
    shoot_rank: int         # 1 = the best cull score of the shoot
    score: float            # cull score
    pick: bool              # the best frame of its group
    status: str             # keep, pick, alternate, reject (`STATUSES`)
    rating: int             # xmp:Rating: -1 (rejected), 1-5
    label: str | None       # xmp:Label
    reason: str
    burst: bool = False     # the group is one run of frames in time

    @property
    def group_id(self) -> str:
        """The group's name in this run: g0001, g0002, ... in the order the shoot goes."""
        return f"g{self.group + 1:04d}"


def _name(row: dict[str, Any]) -> str:
    path = row.get("path")
    return os.path.basename(path) if isinstance(path, str) and path else "(unnamed)"


def _relation(i: int, j: int, rows: Sequence[dict[str, Any]], times: Sequence[float | None]) -> str:
    """How photo j is named from photo i: "the frame 0.4 s later (IMG_2.jpg)", or its name."""
    name = _name(rows[j])
    ti, tj = times[i], times[j]
    if ti is None or tj is None:
        return name
    dt = tj - ti
    if abs(dt) < 0.05:
        return f"the frame taken at the same moment ({name})"
    span = f"{abs(dt):.1f} s" if abs(dt) < 60 else f"{abs(dt) / 60:.0f} min"
    return f"the frame {span} {'later' if dt > 0 else 'earlier'} ({name})"


def _attr(row: dict[str, Any], fam: str) -> float | None:
    attr = FAMILIES[fam].attribute
    v = (row.get("scores") or {}).get(attr) if attr else None
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _edges(a: dict[str, Any], others: Sequence[dict[str, Any]]) -> list[str]:
    """The families in which photo ``a`` is better than every one of ``others``, most telling first:
    its worst finding there is the mildest (and someone else's is worse), or, with no finding apart,
    its score there (sharpness, noisiness) leads the runner-up by 3 or more. Where the family has a
    score, ``a``'s is the highest too, so that "sharpest" is true as written."""
    pa = _family_penalties(a)
    po = [_family_penalties(b) for b in others]
    found = []
    for fam in ("focus", "noise", "exposure", "compression"):
        mine, theirs = pa[fam][0], [p[fam][0] for p in po]
        va, vo = _attr(a, fam), [_attr(b, fam) for b in others]
        if va is not None and any(v is not None and v > va + 0.5 for v in vo):
            continue  # another frame scores higher here: not the "sharpest"
        if mine <= min(theirs) and max(theirs) > mine:
            gap = float(np.mean(theirs)) - mine + 100.0  # a finding the others have outranks score margins
        elif va is not None and all(v is not None for v in vo) and va - max(vo) >= 3.0:
            gap = va - max(vo)  # margin over the runner-up
        else:
            continue
        found.append((gap, fam))
    return [fam for _, fam in sorted(found, reverse=True)]


def _edge(a: dict[str, Any], others: Sequence[dict[str, Any]]) -> str | None:
    """The most telling of `_edges` (None when nothing stands out)."""
    edges = _edges(a, others)
    return edges[0] if edges else None


def _words(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _sharpness(row: dict[str, Any]) -> float:
    v = (row.get("scores") or {}).get("sharpness")
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else 0.0


def _failure(row: dict[str, Any], kinds: Sequence[str]) -> dict[str, Any] | None:
    """The first severe finding of one of ``kinds``."""
    return next((f for f in _findings(row) if f["kind"] in kinds and f.get("severity") == "severe"), None)


def _misfire(row: dict[str, Any], pick: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """A moderate or worse focus, noise or exposure finding of ``row`` whose family the pick is free of
    (at least a severity level better): (the finding, its family)."""
    mine, theirs = _family_penalties(row), _family_penalties(pick)
    worst = None
    for fam in ("focus", "noise", "exposure", "compression"):
        p, f = mine[fam]
        if f is None or _SEVERITY_RANK.get(f.get("severity") or "", 0) < 2:
            continue
        other = theirs[fam][1]
        if other is not None and _SEVERITY_RANK.get(other.get("severity") or "", 0) >= _SEVERITY_RANK[f["severity"]] - 1:
            continue
        if worst is None or p > worst[0]:
            worst = (p, f, fam)
    return None if worst is None else (worst[1], worst[2])


def _compare(pick: dict[str, Any], row: dict[str, Any], fam: str) -> str:
    """"is sharp" when the pick has no problem of the family, "is sharper" when a milder one, else
    "is the pick"."""
    theirs, mine = _family_penalties(pick)[fam][0], _family_penalties(row)[fam][0]
    if theirs == 0:
        return f"is {FAMILIES[fam].good}"
    return f"is {FAMILIES[fam].better}" if theirs < mine else "is the pick"


def _stars_words(rating: int) -> str:
    return "rejected" if rating < 0 else f"{rating} star{'s' if rating != 1 else ''}"


def _exposure(row: dict[str, Any]) -> float | None:
    v = (row.get("measures") or {}).get("exposure_ev")
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def group_scores(rows: Sequence[dict[str, Any]], members: Sequence[int], scores: np.ndarray,
                 typicality: np.ndarray | None, options: RatingOptions) -> np.ndarray:
    """The scores that rank the frames of one group: each cull score less `RatingOptions.exposure_weight`
    per EV from the group's median exposure and `RatingOptions.typical_weight` times its typicality
    (mean signature distance to the other members, in units of the ``near`` threshold)."""
    out = np.array([scores[i] for i in members], dtype=np.float64)
    if len(members) < 2:
        return out
    ev = [_exposure(rows[i]) for i in members]
    known = [e for e in ev if e is not None]
    if known:
        median = float(np.median(known))
        out -= options.exposure_weight * np.array([0.0 if e is None else abs(e - median) for e in ev])
    if typicality is not None:
        t = np.array([typicality[i] for i in members], dtype=np.float64)
        out -= options.typical_weight * np.where(np.isfinite(t), t, np.nanmax(np.where(np.isfinite(t), t, 0)) + 1)
    return out


def decide(rows: Sequence[dict[str, Any]], labels: np.ndarray, runs: np.ndarray, times: Sequence[float | None],
           options: RatingOptions = RatingOptions(), typicality: np.ndarray | None = None) -> list[Decision]:
    """Rank, pick, reject and rate the analysed photos.

    Parameters
    ----------
    rows : sequence of dict
        Analysed result rows (``Report.to_dict()`` shapes; no error rows).
    labels : ndarray of int
        Group of each photo (`group_photos`).
    runs : ndarray of int
        Run of frames of each photo (-1 without a time): a group inside one run is a burst.
    times : sequence of float or None
        Capture times in seconds.
    options : RatingOptions
    typicality : ndarray, optional
        Per photo, its mean signature distance to the other members of its group over the ``near``
        threshold (`group_typicality`); without it, frames are ranked without that term.

    Returns
    -------
    list of Decision
        One per row, in row order.
    """
    n = len(rows)
    scores = np.array([cull_score(r) for r in rows], dtype=np.float64)
    # shoot rank: best cull score first; ties by sharpness, then input order
    order = sorted(range(n), key=lambda i: (-scores[i], -_sharpness(rows[i]), i))
    shoot_rank = np.empty(n, dtype=np.int64)
    shoot_rank[order] = np.arange(1, n + 1)

    groups: dict[int, list[int]] = {}
    for i in order:
        groups.setdefault(int(labels[i]), []).append(i)
    # within a group, frames are ranked on their group scores (ties: the shoot's order)
    for g, members in groups.items():
        ranked = group_scores(rows, members, scores, typicality, options)
        groups[g] = [members[k] for k in sorted(range(len(members)), key=lambda k: (-ranked[k], k))]

    out: list[Decision | None] = [None] * n
    status: dict[int, str] = {}
    why: dict[int, str] = {}
    for g, members in groups.items():
        pick = members[0]
        size = len(members)
        burst = size > 1 and all(runs[m] >= 0 and runs[m] == runs[pick] for m in members)
        what = f"{size}-frame burst" if burst else f"{size} near-identical frames"
        for rank, i in enumerate(members, start=1):
            out[i] = Decision(index=i, group=g, group_size=size, group_rank=rank, shoot_rank=int(shoot_rank[i]),
                              score=round(float(scores[i]), 1), pick=i == pick, status="", rating=0, label=None,
                              reason="", burst=burst)
        # the pick's reason (before any keep/reject clause)
        if size > 1:
            edges = _edges(rows[pick], [rows[m] for m in members[1:]])
            others = max(scores[m] for m in members[1:])
            kind = f"{'a ' if burst else ''}{what}"
            if edges:
                why[pick] = f"{_words([FAMILIES[f].best for f in edges])} of {kind} (cull score {scores[pick]:.0f})"
            elif scores[pick] > others + 0.05:
                why[pick] = f"highest cull score of {kind} ({scores[pick]:.0f})"
            else:  # won on the group terms: say which, and how close the cull scores are
                ev = [_exposure(rows[m]) for m in members]
                known = [e for e in ev if e is not None]
                off = [abs(e - float(np.median(known))) if e is not None else np.inf for e in ev] if known else []
                term = "nearest the middle exposure" if off and off[0] <= min(off[1:]) - 0.2 else "most like the others"
                gap = others - scores[pick]
                close = (f"alike in cull score ({scores[pick]:.0f})" if gap < 0.5 else
                         f"{gap:.0f} cull point{'s' if round(gap) != 1 else ''} under the best (cull score {scores[pick]:.0f})")
                why[pick] = f"{term} of {kind}, {close}"
        else:
            why[pick] = f"no near-duplicate (cull score {scores[pick]:.0f})"
        # every photo: a failure first; beside a pick, a misfire; then the reject threshold
        for i in members:
            failure = _failure(rows[i], options.reject_on)
            misfire = _misfire(rows[i], rows[pick]) if i != pick else None
            if failure is not None:
                status[i] = "reject"
                text = f"{failure.get('severity')} {_problem(failure['kind'])}"
                fam = _FAMILY_OF.get(failure["kind"], "other")
                if i == pick:
                    text += f", and no better frame among the {what}" if size > 1 else ", and no other frame of this scene"
                else:
                    text += f"; {_relation(i, pick, rows, times)} {_compare(rows[pick], rows[i], fam)}"
                why[i] = text
            elif misfire is not None:
                finding, fam = misfire
                status[i] = "reject"
                why[i] = f"{_problem(finding['kind'])}; {_relation(i, pick, rows, times)} {_compare(rows[pick], rows[i], fam)}"
            elif scores[i] < options.reject_below:
                status[i] = "reject"
                problems = [f"{f.get('severity')} {_problem(f['kind'])}" for f in _findings(rows[i])
                            if f.get("severity") in ("moderate", "severe")][:2]
                why[i] = (f"cull score {scores[i]:.0f} is under the reject threshold {options.reject_below:g}"
                          + (f" ({', '.join(problems)})" if problems else ""))
            elif i != pick:
                status[i] = "alternate"
                fam = _edge(rows[pick], [rows[i]])
                if fam:
                    why[i] = f"near-identical to {_relation(i, pick, rows, times)}, which is {FAMILIES[fam].better}"
                elif scores[pick] - scores[i] >= 0.5:
                    why[i] = (f"near-identical to {_relation(i, pick, rows, times)}, which is better overall "
                              f"(cull score {scores[pick]:.0f} against {scores[i]:.0f})")
                else:
                    why[i] = (f"as good as {_relation(i, pick, rows, times)} (cull score {scores[i]:.0f}), which is "
                              "the pick: one pick per group")

    # keep the best picks of the shoot
    candidates = [i for i in order if out[i].pick and status.get(i) != "reject"]
    n_keep = options.keep_count(n)
    kept = candidates[:n_keep]
    k = len(kept)
    n5 = int(math.ceil(options.five * k)) if k else 0
    n4 = int(math.ceil(options.four * k)) if k else 0
    for position, i in enumerate(kept):
        status[i] = "keep"
        out[i].rating = 5 if position < n5 else 4 if position < n5 + n4 else 3
    for i in candidates[n_keep:]:
        status[i] = "pick"
    for i in range(n):
        d = out[i]
        d.status = status[i]
        if d.status != "keep":
            d.rating = STATUSES[d.status]
        d.label = options.labels.get(d.status) or None
        rank = f"rank {d.shoot_rank:,} of {n:,}"
        if d.status == "keep":
            d.reason = f"{why[i]}; {rank}, in {options.keep_words()} of the shoot: {_stars_words(d.rating)}"
        elif d.status == "pick":
            d.reason = f"{why[i]}; {rank}, below {options.keep_words()} of the shoot: {_stars_words(d.rating)}"
        else:
            d.reason = why[i]
    return [d for d in out if d is not None]
