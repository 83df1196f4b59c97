"""Porting advice for GroupNorm and InstanceNorm (issue 22): each framework's argument names, the
measured default eps and number of groups, and the documented affine defaults, which differ.

Measured rows come from the matrix (reports/matrix.py); the affine defaults are what the frameworks
document (the outputs of a freshly built layer cannot show them: scale 1 and shift 0 are an identity).
"""
from __future__ import annotations

# family -> (GroupNorm call, InstanceNorm call, groups argument, eps argument, InstanceNorm's affine default,
#            GroupNorm's channel-axis argument: None where the layer has none)
GROUP_ARGUMENTS = {
    "torch": ("torch.nn.GroupNorm(num_groups, num_channels, {})", "torch.nn.InstanceNorm2d(num_features, {})",
              "num_groups", "eps",
              "affine=False: no scale or shift unless asked (https://pytorch.org/docs/stable/generated/"
              "torch.nn.InstanceNorm2d.html)", None),
    "flax": ("GroupNorm({})", "InstanceNorm({})", "num_groups", "epsilon",
             "use_scale=True, use_bias=True (https://flax.readthedocs.io/en/latest/api_reference/flax.linen/"
             "layers.html#flax.linen.InstanceNorm)", None),
    "keras": ("keras.layers.GroupNormalization({})", "keras.layers.GroupNormalization(groups=-1, {})", "groups",
              "epsilon", "scale=True, center=True (GroupNormalization: "
              "https://keras.io/api/layers/normalization_layers/group_normalization/)", "axis"),
    "onnxruntime": ("GroupNormalization(num_groups=..., {})", "InstanceNormalization({})",
                    "num_groups", "epsilon", "scale and B are required inputs", None),
}
EPS_ROWS = {"GroupNorm": "default eps (GroupNorm)", "InstanceNorm": "default eps (InstanceNorm)"}
GROUPS_ROW = "default groups (GroupNorm)"
AXIS_ROW = "default channel axis (GroupNorm)"


def group_advice(rows: dict, a, b, one, number) -> list[str]:
    """Lines for the pair (reports/porting.py Groups a, b); `one(row, group)` is the group's single
    reading of a row (None if none or several), `number(label)` its value."""
    args = {g.family: GROUP_ARGUMENTS.get(g.family) for g in (a, b)}
    if None in args.values():
        return []
    out = []
    for layer, title in EPS_ROWS.items():
        ea, eb = number(one(rows.get(title), a)), number(one(rows.get(title), b))
        if ea is not None and eb is not None and ea != eb:
            out.append(f"{layer} eps: the defaults differ ({a.label} {ea:g}, {b.label} {eb:g}): pass it to both, "
                       f"{a.label} {args[a.family][3]}= and {b.label} {args[b.family][3]}=")
    ga, gb = (number(one(rows.get(GROUPS_ROW), g)) for g in (a, b))
    if ga != gb:
        shown = {g.label: ("no default: required" if v is None else f"default {v:g}") for g, v in ((a, ga), (b, gb))}
        out.append(f"GroupNorm groups: {a.label} {args[a.family][2]} ({shown[a.label]}), {b.label} "
                   f"{args[b.family][2]} ({shown[b.label]}): pass the number of groups to both, as "
                   f"{args[a.family][0].format('...')} and {args[b.family][0].format('...')}")
    xa, xb = (number(one(rows.get(AXIS_ROW), g)) for g in (a, b))
    if xa is not None and xb is not None and xa != xb:
        out.append(f"GroupNorm channels: {a.label} takes them on axis {xa}, {b.label} on {xb}: "
                   + "; ".join(f"{g.label} " + (f"takes {args[g.family][5]}={x_src}" if args[g.family][5] else
                                                f"has no axis argument: feed it x moved from axis {x_src} to {x_dst} "
                                                f"(and move the result back)")
                               for g, x_src, x_dst in ((b, xa, xb), (a, xb, xa))))
    if args[a.family][4] != args[b.family][4]:
        out.append(f"InstanceNorm's affine defaults (documented): {a.label} {args[a.family][1].format('...')} has "
                   f"{args[a.family][4]}; {b.label} {args[b.family][1].format('...')} has {args[b.family][4]}: "
                   f"set them explicitly, and load or drop the scale and shift to match")
    return out
