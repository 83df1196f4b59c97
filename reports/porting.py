"""The porting guide, derived from the measured matrix: for each pair of frameworks, in each one's own
argument names (reports/arguments.py), what to pass so they agree, which documented switch fixes a
known deviation, and what no argument reconciles.

Adapters of one family that behave alike in every convention and default (torch and torch_functional,
the three Keras backends) form one group, so advice is not repeated; where they differ in a behaviour
the line names the members.  A cell that is mixed, unclear or not shown gives no advice: it is listed
as "unclear: see cases ...".  A default is always reconciled by passing the argument explicitly.
"""
from __future__ import annotations

import ast
import html
import itertools
from dataclasses import dataclass, field

from normconf.reports.arguments import Arguments, arguments_for, family
from normconf.reports.cost import cost_text
from normconf.reports.gradient_html import porting_html
from normconf.reports.palette import label_of
from normconf.reports.porting_groups import AXIS_ROW as GROUP_AXIS_ROW
from normconf.reports.porting_groups import EPS_ROWS as GROUP_EPS_ROWS
from normconf.reports.porting_groups import GROUPS_ROW, group_advice
from normconf.reports.porting_rms import HANDLED as RMS_HANDLED
from normconf.reports.porting_rms import rms_advice

UNUSABLE = ("mixed", "unclear", "not-shown")
# rows that decide whether two adapters of one family can share advice
GROUPING_KINDS = ("convention", "default", "derived", "measured")
EPS_ROWS = {"layer_norm": "default eps (LayerNorm)", "batch_norm": "default eps (BatchNorm)"}
MOMENTUM_ROW, AXIS_ROW = "default momentum (BatchNorm, weight on the new batch)", "default feature axis (BatchNorm)"
LAYOUT_ROW, LN_AXES_ROW = "BatchNorm channels-last input", "LayerNorm over non-trailing axes"
CUMULATIVE, CUMULATIVE_ROW = "cumulative average", "cumulative average (momentum=None)"  # the default probe's reading; its row
HANDLED = {"momentum_form", MOMENTUM_ROW, AXIS_ROW, LAYOUT_ROW, LN_AXES_ROW, *EPS_ROWS.values(),
           *GROUP_EPS_ROWS.values(), GROUPS_ROW, GROUP_AXIS_ROW,
           "default momentum (BatchNorm, the framework's own form)", "running-variance factor", *RMS_HANDLED}
# what no argument changes, with what one can do about it
HINTS = {
    "cumulative average (momentum=None)": "the side without it has no argument for a cumulative average: "
                                          "pass a momentum instead",
    "one value per channel (training)": "no argument changes it: avoid training batches with one value per channel",
    "LayerNorm per-feature-axis affine": "no argument: use a LayerNorm without affine parameters and apply the "
                                         "per-feature scale and shift yourself",
}


@dataclass
class Group:
    family: str
    members: list[str]
    args: Arguments
    label: str = ""  # how advice names the group: the framework, or its members where a family splits

    @property
    def name(self) -> str:
        """`Keras (keras[tensorflow], keras[jax], keras[torch])`; a plug-in is just its name."""
        return self.label if self.members == [self.label] else f"{self.label} ({', '.join(self.members)})"


@dataclass
class PairAdvice:
    a: Group
    b: Group
    agree: list[str] = field(default_factory=list)      # what to pass so they agree
    like: dict = field(default_factory=dict)            # (from, to) group name -> {layer: kwargs, "input": ...}
    switches: list[str] = field(default_factory=list)   # a known deviation's documented switch
    cannot: list[str] = field(default_factory=list)     # what no argument reconciles
    unclear: list[str] = field(default_factory=list)    # cells that give no advice


def groups(matrix: dict, adapter_info: dict | None = None) -> list[Group]:
    info = adapter_info or {}
    rows = [r for r in matrix["rows"] if r["kind"] in GROUPING_KINDS]
    keyed: dict[tuple, Group] = {}
    for a in matrix["adapters"]:
        fam = family(a, info.get(a))
        key = (fam, *((label_of(r["cells"][a]), r["cells"][a]["status"]) for r in rows))
        keyed.setdefault(key, Group(fam, [], arguments_for(fam, info.get(a)))).members.append(a)
    out = list(keyed.values())
    for g in out:
        split = sum(h.args.label == g.args.label for h in out) > 1
        g.label = ", ".join(g.members) if split else g.args.label
    return out


def _sides(row, g: Group) -> dict[str, list[str]]:
    """label -> members, over the members that ran and gave a usable cell."""
    out: dict[str, list[str]] = {}
    for m in g.members:
        cell = row["cells"][m]
        if cell["status"] not in UNUSABLE and label_of(cell) is not None:
            out.setdefault(label_of(cell), []).append(m)
    return out


def _one(row, g: Group):
    """The group's single usable label in this row, else None."""
    if row is None:
        return None
    sides = _sides(row, g)
    return next(iter(sides)) if len(sides) == 1 else None


def _number(label):
    try:
        value = float(label)
    except (TypeError, ValueError):
        return None
    return int(value) if value.is_integer() and "." not in label and "e" not in label else value


def _own_form(weight_on_new: float, form: str) -> float:
    return weight_on_new if form == "weight_on_new" else round(1.0 - weight_on_new, 12)


def _describe(row, g: Group) -> str:
    """`torch: raises` or, where the group's members differ, `keras[tensorflow], keras[jax]: accurate; ...`."""
    sides = _sides(row, g)
    if len(sides) == 1:
        label = next(iter(sides))
        return f"{g.label}: {_with_detail(row, sides[label][0], label)}"
    return "; ".join(f"{', '.join(ms)}: {_with_detail(row, ms[0], label)}" for label, ms in sides.items())


def _with_detail(row, member, label) -> str:
    detail = row["cells"][member].get("detail")
    return f"{label} ({detail})" if detail else label


def pair_advice(matrix: dict, a: Group, b: Group) -> PairAdvice:
    adv = PairAdvice(a, b)
    skip = set()
    for row in matrix["rows"]:
        for g in (a, b):
            for m in g.members:
                cell = row["cells"][m]
                if cell["status"] in UNUSABLE:
                    skip.add(row["row"])
                    cases = cell.get("unclear") or cell.get("cases") or []
                    adv.unclear.append(f"unclear: {row['row']} on {m} ({cell['status']}): see cases "
                                       f"{', '.join(cases) or '-'}")
    usable = {r["row"]: r for r in matrix["rows"] if r["row"] not in skip}
    adv.like = {(a.name, b.name): {"layer_norm": {}, "batch_norm": {}, "rms_norm": {}, "input": None},
                (b.name, a.name): {"layer_norm": {}, "batch_norm": {}, "rms_norm": {}, "input": None}}
    _momentum(usable, adv)
    _eps(usable, adv)
    _axis(usable, adv)
    _layernorm_axes(usable, adv)
    rms_advice(usable, adv, _one, _number)
    adv.agree += group_advice(usable, a, b, _one, _number)
    for row in usable.values():
        if row["row"] in HANDLED or row["kind"] in ("default", "derived"):
            continue
        sa, sb = _sides(row, a), _sides(row, b)
        if not sa or not sb or len(set(sa) | set(sb)) < 2:
            continue
        if row["kind"] == "convention":
            adv.cannot.append(_convention_text(row, a, b))
        else:
            _behaviour(row, adv)
    return adv


def _momentum(rows, adv):
    a, b = adv.a, adv.b
    form_row, weight_row = rows.get("momentum_form"), rows.get(MOMENTUM_ROW)
    fa, fb = _one(form_row, a), _one(form_row, b)
    wa, wb = _number(_one(weight_row, a)), _number(_one(weight_row, b))
    forms = ("weight_on_new", "weight_on_old")
    if fa not in forms or fb not in forms:
        return
    ka, kb = a.args.momentum, b.args.momentum
    if fa != fb:
        new, old = (a, b) if fa == "weight_on_new" else (b, a)
        line = (f"momentum: {new.label} {new.args.momentum}=m is {old.label} {old.args.momentum}=1 - m "
                f"({new.label} weights the new batch, {old.label} the running value)")
    else:
        line = f"momentum: both weight the {'new batch' if fa == 'weight_on_new' else 'running value'}"
    ca, cb = (_one(weight_row, g) == CUMULATIVE for g in (a, b))
    if ca != cb and (wa if cb else wb) is not None:
        line += (_cumulative_default(rows, adv, a, b, wb, fa, fb) if ca
                 else _cumulative_default(rows, adv, b, a, wa, fb, fa))
    elif wa is not None and wb is not None:
        line += (f"; defaults: {a.label} {ka}={_own_form(wa, fa):g} is {b.label} {kb}={_own_form(wa, fb):g}, "
                 f"{b.label} {kb}={_own_form(wb, fb):g} is {a.label} {ka}={_own_form(wb, fa):g}")
        if wa != wb:
            adv.like[(a.name, b.name)]["batch_norm"][kb] = _own_form(wa, fb)
            adv.like[(b.name, a.name)]["batch_norm"][ka] = _own_form(wb, fa)
    if fa != fb or wa != wb or ca != cb:
        adv.agree.append(line)


def _cumulative_default(rows, adv, cum, other, w, form_cum, form_other) -> str:
    """`cum`'s default momentum is the cumulative average (momentum=None, measured by the default probe):
    `cum` takes the other's weight in its own form; the other matches it with momentum=None where the
    run shows it has a cumulative average, and otherwise the line says no argument does."""
    kc, ko = cum.args.momentum, other.args.momentum
    adv.like[(other.name, cum.name)]["batch_norm"][kc] = _own_form(w, form_cum)
    text = (f"; defaults: {cum.label} averages cumulatively ({kc}=None), {other.label} {ko}="
            f"{_own_form(w, form_other):g} is {cum.label} {kc}={_own_form(w, form_cum):g}")
    has = _one(rows.get(CUMULATIVE_ROW), other)
    if has == "supported":
        adv.like[(cum.name, other.name)]["batch_norm"][ko] = None
        return text + f", {cum.label}'s default is {other.label} {ko}=None"
    if has is None:
        return text + f"; whether {other.label} has a cumulative average was not measured in this run"
    return text + f"; {other.label} has no cumulative average: no argument reproduces {cum.label}'s default"


def _eps(rows, adv):
    a, b = adv.a, adv.b
    parts = []
    for layer, title in EPS_ROWS.items():
        ea, eb = _number(_one(rows.get(title), a)), _number(_one(rows.get(title), b))
        if ea is None or eb is None or ea == eb:
            continue
        name = "LayerNorm" if layer == "layer_norm" else "BatchNorm"
        parts.append(f"{name} {a.label} {ea:g}, {b.label} {eb:g}")
        adv.like[(a.name, b.name)][layer][b.args.eps] = ea
        adv.like[(b.name, a.name)][layer][a.args.eps] = eb
    if parts:
        adv.agree.append(f"eps: the defaults differ ({'; '.join(parts)}): pass the same value to both, "
                         f"{a.label} {a.args.eps}= and {b.label} {b.args.eps}=")


def _axis(rows, adv):
    a, b = adv.a, adv.b
    xa, xb = _number(_one(rows.get(AXIS_ROW), a)), _number(_one(rows.get(AXIS_ROW), b))
    layout = rows.get(LAYOUT_ROW)
    if xa is None or xb is None:
        return
    if xa != xb:
        parts = []
        for src, dst, x_src, x_dst in ((a, b, xa, xb), (b, a, xb, xa)):
            like = adv.like[(src.name, dst.name)]
            if dst.args.axis:
                like["batch_norm"][dst.args.axis] = x_src
                parts.append(f"{dst.label} {dst.args.axis}={x_src} normalizes like {src.label}'s default")
            else:
                like["input"] = f"x.movedim({x_src}, {x_dst})"
                parts.append(f"{dst.label} has no feature-axis argument (channels are dim {x_dst}): feed it "
                             f"x.movedim({x_src}, {x_dst}) and move the result back with .movedim({x_dst}, {x_src})")
        adv.agree.append(f"feature axis: {a.label} defaults to {xa}, {b.label} to {xb}: " + "; ".join(parts))
        return
    fixed = [g for g in (a, b) if not g.args.axis]
    if len(fixed) == 1 and _one(layout, a) != _one(layout, b):  # same default, one side cannot take another axis
        other = b if fixed[0] is a else a
        adv.agree.append(f"channels-last input: {fixed[0].label} has no feature-axis argument: feed it "
                         f"x.movedim(-1, {xa}) and move the result back with .movedim({xa}, -1); "
                         f"{other.label} takes {other.args.axis}=-1")


def _layernorm_axes(rows, adv):
    row = rows.get(LN_AXES_ROW)
    if row is None:
        return
    la, lb = _one(row, adv.a), _one(row, adv.b)
    if {la, lb} == {"supported", "trailing only"}:
        trailing = adv.a if la == "trailing only" else adv.b
        adv.agree.append(f"LayerNorm over axes other than the last: {trailing.label} takes "
                         f"{trailing.args.layer_norm_axes}: move those axes to the end first (x.movedim) "
                         f"and back after")


def _convention_text(row, a, b) -> str:
    text = f"{row['row']}: {_describe(row, a)}; {_describe(row, b)}. No argument changes it"
    cost = cost_text(row["row"], next(iter(_sides(row, a))), next(iter(_sides(row, b))))
    text += f". {cost}" if cost else ""
    if row["row"] == "running_variance":
        text += (". Trained on the same batches, the unbiased running variance is N/(N-1) times the biased one "
                 "(N: values per channel in a training batch; exact apart from the initial 1, which fades as "
                 "(1 - momentum)^steps). Porting a checkpoint: copy the stored values as they are to keep its "
                 "evaluation outputs; multiply by (N-1)/N (unbiased to biased) or N/(N-1) (biased to unbiased) "
                 "for what the other framework would have stored")
    return text


def _behaviour(row, adv):
    a, b = adv.a, adv.b
    known = [(g, m) for g in (a, b) for m in g.members if row["cells"][m]["status"] == "known"]
    for g in (a, b):
        switch = g.args.switches.get(row["row"])
        members = [m for gg, m in known if gg is g]
        if switch and members:
            other = b if g is a else a
            name, _, value = switch[0].partition("=")
            layer = "layer_norm" if "LayerNorm" in row["row"] else "batch_norm"
            adv.like[(other.name, g.name)][layer][name] = ast.literal_eval(value)  # the line must have it too
            shown = _with_detail(row, members[0], label_of(row["cells"][members[0]]))
            adv.switches.append(f"{', '.join(members)}: {row['row']} is {shown} by default, a known deviation: "
                                f"{switch[0]} fixes it ({switch[1]})")
    rest = [m for g, m in known if not g.args.switches.get(row["row"])]
    if rest:
        adv.cannot.append(f"{row['row']}: {_describe(row, a)}; {_describe(row, b)}. A known deviation of "
                          f"{', '.join(rest)} with no documented switch")
    elif not known:
        hint = HINTS.get(row["row"], "no argument changes it")
        adv.cannot.append(f"{row['row']}: {_describe(row, a)}; {_describe(row, b)}. {hint[0].upper()}{hint[1:]}")


def guide(matrix: dict, adapter_info: dict | None = None) -> list[PairAdvice]:
    return [pair_advice(matrix, a, b) for a, b in itertools.combinations(groups(matrix, adapter_info), 2)]


def like_lines(adv: PairAdvice) -> list[str]:
    """The copy-paste lines: each side called with the other's defaults, in its own argument names."""
    out = []
    for src, dst in ((adv.a, adv.b), (adv.b, adv.a)):
        like = adv.like[(src.name, dst.name)]
        if not any(like.values()):
            continue
        calls = [dst.args.call(layer, like[layer]) for layer in ("layer_norm", "batch_norm", "rms_norm")
                 if like[layer]]
        feed = f" on {like['input']}" if like["input"] else ""
        out.append(f"{dst.label} with {src.label}'s defaults: {', '.join(calls) or 'as it is'}{feed}")
    return out


def porting_guide(matrix: dict, adapter_info: dict | None = None, gradients: dict | None = None) -> str:
    """The pairs' advice, then where their gradients differ (results.json `gradients`, where recorded)."""
    e = html.escape
    out = []
    for adv in guide(matrix, adapter_info):
        like = like_lines(adv)
        sections = [("Pass these so they agree", adv.agree), ("", [f"<code>{e(x)}</code>" for x in like]),
                    ("A known deviation's documented switch", adv.switches),
                    ("No argument reconciles", adv.cannot), ("No advice", adv.unclear)]
        if not any(items for _, items in sections):
            continue
        body = []
        for title, items in sections:
            if not items:
                continue
            escaped = items if not title else [e(x) for x in items]
            head = f"<b>{e(title)}</b>" if title else ""
            body.append(f"{head}<ul>{''.join(f'<li>{x}</li>' for x in escaped)}</ul>")
        out.append(f'<div class="pair"><h3>{e(adv.a.name)} &harr; {e(adv.b.name)}</h3>{"".join(body)}</div>')
    gradient = porting_html(gradients, matrix["adapters"])
    return f'<div id="porting">{"".join(out) or "<p>Every pair agrees.</p>"}{gradient}</div>'
