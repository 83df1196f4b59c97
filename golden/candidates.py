"""Every combination of a layer's convention variants, with the outputs golden/reference.py gives under it.

Conventions interact, so the judge identifies them jointly: it compares an adapter's outputs with the
reference's under every combination (a profile) of the variants in reference.LAYER_CONVENTIONS -- 4 for
LayerNorm, 288 for a BatchNorm training run.  Each output depends on a few conventions only (see
`_bn_key`), so a case's profiles share about a hundred distinct arrays, each computed once.

eps and momentum may be callables (candidates, profile) -> value: a default the adapter was not given
is measured under each profile (judge/) and the candidate outputs use that estimate.
"""
from __future__ import annotations

import hashlib
import itertools
import math

import numpy as np

from normconf.golden import reference as ref
from normconf.golden.ragged import join_steps, split_steps
from normconf.golden.rms_inputs import rounder
from normconf.golden.tolerance import INERT, scaled_errors

TRAJECTORY = ("running_variance", "momentum_form", "initial_running_stats")
NOT_SHOWN = "not shown"  # the case cannot move the outputs with this convention (here)
UNCLEAR = "unclear"      # the outputs that fit best differ in this convention, and it matters


def profiles(layer: str, allowed: dict[str, tuple[str, ...]] | None = None) -> list[dict[str, str]]:
    """Every combination of the layer's convention variants; `allowed` restricts some conventions."""
    allowed = allowed or {}
    conventions = ref.LAYER_CONVENTIONS[layer]
    return [dict(zip(conventions, values))
            for values in itertools.product(*(allowed.get(c, ref.CONVENTIONS[c]) for c in conventions))]


def base_profile(layer: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """BASE_PROFILE restricted to the layer's conventions, with overrides: one entry of profiles(layer)."""
    full = ref.full_profile(overrides)
    return {c: full[c] for c in ref.LAYER_CONVENTIONS[layer]}


class _Candidates:
    """Memoises each output by (output, the conventions it depends on, the parameters it uses)."""
    OUTPUTS: tuple[str, ...] = ("y",)

    def __init__(self, eps, momentum=None):
        self.eps, self.momentum = eps, momentum
        self._memo: dict[tuple, np.ndarray] = {}

    def param(self, which: str, p: dict):
        value = getattr(self, which)
        return value(self, p) if callable(value) else value

    def key(self, name: str, p: dict) -> tuple:
        conventions, uses_trajectory = self.dependencies(name, p)
        return (name, conventions, self.param("eps", p) if name.startswith("y") else None,
                self.param("momentum", p) if uses_trajectory else None)

    def output(self, name: str, p: dict) -> np.ndarray:
        key = self.key(name, p)
        if key not in self._memo:
            with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 is the formula's own NaN
                self._memo[key] = self._compute(name, p, key[2], key[3])
        return self._memo[key]

    def outputs(self, p: dict) -> dict[str, np.ndarray]:
        return {name: self.output(name, p) for name in self.OUTPUTS}

    def eps_inputs(self, p: dict, y):
        """(x, y, centre, variance, gamma, beta), broadcast together, that a default eps is read from."""
        x, centre, var = self.normalizer(p)
        return x, y, centre, var, self.gamma, self.beta


class LayerNormCandidates(_Candidates):
    layer = "layer_norm"

    def __init__(self, x, axes, gamma, beta, eps):
        """gamma/beta broadcast against x (reference.affine_shape)."""
        super().__init__(eps)
        self.x, self.axes, self.gamma, self.beta = np.asarray(x, np.float64), tuple(axes), gamma, beta

    def dependencies(self, name, p):
        return (p["norm_variance"], p["eps_placement"]), False

    def _compute(self, name, p, eps, momentum):
        return ref.layer_norm(self.x, self.axes, self.gamma, self.beta, eps, norm_variance=p["norm_variance"],
                              eps_placement=p["eps_placement"]).y

    def normalizer(self, p):
        """(x, centre, variance) the profile normalizes with, broadcast against x."""
        out = ref.layer_norm(self.x, self.axes, eps=0.0, norm_variance=p["norm_variance"])
        return self.x, out.mean, out.var


class RMSNormCandidates(_Candidates):
    """RMSNorm; `rnd` rounds to a float16/bfloat16 input's dtype (golden/rms_inputs.py rounder), None otherwise."""
    layer = "rms_norm"

    def __init__(self, x, axes, weight, eps, rnd, mixed=False):
        """mixed: a float32 weight beside a float16/bfloat16 x, so the output dtype is a convention."""
        super().__init__(eps)
        self.x, self.axes, self.weight, self.rnd = np.asarray(x, np.float64), tuple(axes), weight, rnd
        self.mixed = mixed and rnd is not None
        self.gamma, self.beta = weight, None  # what the eps estimator un-affines with (probes have no weight)

    def dependencies(self, name, p):
        casting = p["rms_casting"] if self.rnd is not None else None
        return (p["eps_placement"], p["rms_weight_form"] if self.weight is not None else None, casting,
                p["rms_statistic"], p["rms_output_dtype"] if self.mixed else None), False

    def _compute(self, name, p, eps, momentum):
        return ref.rms_norm(self.x, self.axes, self.weight, eps, eps_placement=p["eps_placement"],
                            rms_weight_form=p["rms_weight_form"], rms_casting=p["rms_casting"],
                            rms_statistic=p["rms_statistic"], rnd=self.rnd,
                            out_rnd=_identity if self.mixed and p["rms_output_dtype"] == "promoted" else None).y

    def normalizer(self, p):
        """(x, centre 0, mean square or variance) broadcast against x."""
        ms = ref.squared_scale(self.x, ref.normalize_axes(self.axes, self.x.ndim), p["rms_statistic"])
        return self.x, np.zeros_like(ms), ms


def _identity(v):
    return v


class BatchNormEvalCandidates(_Candidates):
    layer = "batch_norm_eval"

    def __init__(self, x, feature_axis, running_mean, running_var, gamma, beta, eps):
        super().__init__(eps)
        self.x, self.feature_axis = np.asarray(x, np.float64), feature_axis
        self.trajectory = ref.Trajectory(*(np.asarray(s, np.float64)[None] for s in
                                           (running_mean, running_var, running_mean, running_var)))
        self.cshape = ref.channel_shape(self.x.ndim, feature_axis, len(running_mean))
        self.gamma, self.beta = ref.reshaped(gamma, self.cshape), ref.reshaped(beta, self.cshape)

    def dependencies(self, name, p):
        batch = p["eval_statistics"] == "batch"
        return (p["eps_placement"], p["eval_statistics"]) + ((p["norm_variance"],) if batch else ()), False

    def normalizer(self, p):
        centre, var = ref.eval_normalizer(self.x, self.feature_axis, self.trajectory, p["norm_variance"],
                                          p["eval_statistics"])
        return self.x, np.reshape(centre, self.cshape), np.reshape(var, self.cshape)

    def _compute(self, name, p, eps, momentum):
        x, centre, var = self.normalizer(p)
        return ref.normalize(x, centre, var, eps, p["eps_placement"], self.gamma, self.beta)


class BatchNormCandidates(_Candidates):
    """K training steps and one eval forward.  momentum is the number handed to the layer (None for
    the cumulative average), or a callable when it is measured."""
    layer = "batch_norm"
    OUTPUTS = ("y_train", "running_mean", "running_var", "y_eval")

    def __init__(self, batches, x_eval, feature_axis, gamma, beta, eps, momentum, join=np.stack):
        super().__init__(eps, momentum)
        # a list where the batch sizes change from step to step; `join` gives y_train its stored form
        self.batches = [np.asarray(b, np.float64) for b in batches]
        self.join = join
        self.x_eval = np.asarray(x_eval, np.float64)
        self.feature_axis = feature_axis
        self.stats = ref.batch_statistics(self.batches, feature_axis)
        self.cshape = ref.channel_shape(self.x_eval.ndim, feature_axis, self.stats.mean.shape[1])
        self.gamma, self.beta = ref.reshaped(gamma, self.cshape), ref.reshaped(beta, self.cshape)
        self._trajectories: dict[tuple, ref.Trajectory] = {}

    def dependencies(self, name, p):
        trajectory = tuple(p[c] for c in TRAJECTORY)
        if name == "running_mean":
            return (p["momentum_form"], p["initial_running_stats"]), True
        if name == "running_var":
            return trajectory, True
        which = "training_statistics" if name == "y_train" else "eval_statistics"
        batch = p[which] == "batch"
        return (p["eps_placement"], p[which]) + ((p["norm_variance"],) if batch else trajectory), not batch

    def trajectory(self, p, fed_var=None) -> ref.Trajectory:
        """The running statistics under the profile; `fed_var` replaces the variance fed to the
        running average (the judge measures the running-variance factor with it)."""
        momentum = self.param("momentum", p)
        key = (tuple(p[c] for c in TRAJECTORY), momentum)
        if fed_var is not None:
            return ref.running_trajectory(self.stats.mean, fed_var, momentum, p["momentum_form"],
                                          p["initial_running_stats"])
        if key not in self._trajectories:
            self._trajectories[key] = ref.running_trajectory(
                self.stats.mean, ref.stored_variance(self.stats, p["running_variance"]), momentum,
                p["momentum_form"], p["initial_running_stats"])
        return self._trajectories[key]

    def normalizer(self, p, step: int = 0):
        """(x, centre, variance) training step `step` normalizes with, broadcast against its batch."""
        with np.errstate(divide="ignore", invalid="ignore"):
            centre, var = ref.training_normalizer(step, self.stats, self.trajectory(p), p["norm_variance"],
                                                  p["training_statistics"])
        return self.batches[step], np.reshape(centre, self.cshape), np.reshape(var, self.cshape)

    def _compute(self, name, p, eps, momentum):
        trajectory = self.trajectory(p)
        if name == "running_mean":
            return trajectory.mean
        if name == "running_var":
            return trajectory.var
        if name == "y_train":
            return self.join([ref.normalize(*self.normalizer(p, k), eps, p["eps_placement"], self.gamma, self.beta)
                              for k in range(len(self.batches))])
        centre, var = ref.eval_normalizer(self.x_eval, self.feature_axis, trajectory, p["norm_variance"],
                                          p["eval_statistics"])
        return ref.normalize(self.x_eval, np.reshape(centre, self.cshape), np.reshape(var, self.cshape), eps,
                             p["eps_placement"], self.gamma, self.beta)


class GroupNormCandidates(_Candidates):
    """GroupNorm, and InstanceNorm (groups = channels, where the mapping cannot matter).  The
    statistics live in reference.grouped's layout (N, G, C/G, ...); the outputs in the input's."""
    layer = "group_norm"

    def __init__(self, x, channel_axis, groups, gamma, beta, eps, layer="group_norm"):
        super().__init__(eps)
        self.layer = layer
        self.x, self.channel_axis, self.groups = np.asarray(x, np.float64), channel_axis, groups
        self.gamma, self.beta = _f64(gamma), _f64(beta)

    def mapping(self, p) -> str:
        return p.get("group_mapping", "contiguous")

    def dependencies(self, name, p):
        return (p["norm_variance"], p["eps_placement"], self.mapping(p)), False

    def _compute(self, name, p, eps, momentum):
        return ref.group_norm(self.x, self.channel_axis, self.groups, self.gamma, self.beta, eps,
                              norm_variance=p["norm_variance"], eps_placement=p["eps_placement"],
                              group_mapping=self.mapping(p)).y

    def normalizer(self, p):
        """(x, centre, variance) in the grouped layout."""
        out = ref.group_norm(self.x, self.channel_axis, self.groups, eps=0.0, norm_variance=p["norm_variance"],
                             group_mapping=self.mapping(p))
        return ref.grouped(self.x, self.channel_axis, self.groups, self.mapping(p)), out.mean, out.var

    def eps_inputs(self, p, y):
        return _grouped_eps_inputs(self, self.normalizer(p), y, self.groups, self.mapping(p))


def _grouped_eps_inputs(cands, normalizer, y, groups, mapping):
    """eps_inputs in the grouped layout: y and the per-channel gamma/beta regrouped like x."""
    x, centre, var = normalizer
    shape, ca = np.shape(y), cands.channel_axis

    def regroup(a):
        return ref.grouped(a, ca, groups, mapping)

    def param(v):
        if v is None:
            return None
        full = np.broadcast_to(ref.reshaped(v, ref.channel_shape(len(shape), ca, len(v))), shape)
        return regroup(full)

    return x, regroup(np.asarray(y, np.float64)), centre, var, param(cands.gamma), param(cands.beta)


class InstanceNormTrackedCandidates(BatchNormCandidates):
    """InstanceNorm with tracked running statistics: K training steps and one eval forward.  The running
    statistics follow BatchNorm's trajectory (initial statistics and training statistics as
    BASE_PROFILE: the conventions the layer does not vary)."""
    layer = "instance_norm_tracked"

    def __init__(self, batches, x_eval, channel_axis, gamma, beta, eps, momentum):
        _Candidates.__init__(self, eps, momentum)
        self.batches = np.asarray(batches, np.float64)
        self.x_eval = np.asarray(x_eval, np.float64)
        self.feature_axis = self.channel_axis = channel_axis
        _, _, self.stats = ref.instance_statistics(self.batches, channel_axis)
        self.cshape = ref.channel_shape(self.x_eval.ndim, channel_axis, self.stats.mean.shape[1])
        self.gamma, self.beta = _f64(gamma), _f64(beta)
        self._trajectories = {}

    def dependencies(self, name, p):
        trajectory = (p["running_variance"], p["momentum_form"])
        if name == "running_mean":
            return (p["momentum_form"],), True
        if name == "running_var":
            return trajectory, True
        if name == "y_train":
            return (p["norm_variance"], p["eps_placement"]), False
        instance = p["instance_eval_statistics"] == "instance"
        return ((p["eps_placement"], p["instance_eval_statistics"])
                + ((p["norm_variance"],) if instance else trajectory)), not instance

    def trajectory(self, p, fed_var=None) -> ref.Trajectory:
        return super().trajectory(ref.full_profile(p), fed_var)

    def normalizer(self, p, step: int = 0):
        """(x, centre, variance) of training step `step`, in the grouped layout (one channel a group)."""
        channels = self.stats.mean.shape[1]
        out = ref.group_norm(self.batches[step], self.channel_axis, channels, eps=0.0, norm_variance=p["norm_variance"])
        return ref.grouped(self.batches[step], self.channel_axis, channels), out.mean, out.var

    def eps_inputs(self, p, y):
        return _grouped_eps_inputs(self, self.normalizer(p), y, self.stats.mean.shape[1], "contiguous")

    def _compute(self, name, p, eps, momentum):
        if name in ("running_mean", "running_var"):
            return super()._compute(name, p, eps, momentum)
        kw = {"norm_variance": p["norm_variance"], "eps_placement": p["eps_placement"]}
        g, b = self.gamma, self.beta
        if name == "y_train":
            return np.stack([ref.instance_norm(x, self.channel_axis, g, b, eps, **kw).y for x in self.batches])
        if p["instance_eval_statistics"] == "instance":
            return ref.instance_norm(self.x_eval, self.channel_axis, g, b, eps, **kw).y
        trajectory = self.trajectory(p)
        return ref.batch_norm_eval(self.x_eval, self.channel_axis, trajectory.mean[-1], trajectory.var[-1], g, b, eps,
                                   eps_placement=p["eps_placement"]).y


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def for_case(case, inputs, *, eps, momentum=None, feature_axis=None, groups=None):
    """The candidates of one case's stored inputs.  eps/momentum/feature_axis are what the layer was
    given (numbers, or callables of the profile for measured defaults); feature_axis defaults to the
    case's, groups (GroupNorm) likewise."""
    gamma, beta = _f64(inputs.get("gamma")), _f64(inputs.get("beta"))
    if case.layer == "rms_norm":
        return RMSNormCandidates(inputs["x"], case.axes, _f64(inputs.get("weight")), eps, rounder(case.dtype),
                                 mixed=case.weight_dtype not in (None, case.dtype))
    if case.layer in ("group_norm", "instance_norm", "instance_norm_tracked"):
        return _group_for_case(case, inputs, gamma, beta, eps, momentum,
                               case.axes[0] if feature_axis is None else feature_axis, groups)
    if case.layer == "layer_norm":
        if gamma is not None:
            shape = ref.affine_shape(case.shape, case.axes, case.layernorm_affine)
            gamma, beta = gamma.reshape(shape), beta.reshape(shape)
        return LayerNormCandidates(inputs["x"], case.axes, gamma, beta, eps)
    fa = case.axes[0] if feature_axis is None else feature_axis
    if case.layer == "batch_norm_eval":
        return BatchNormEvalCandidates(inputs["x"], fa, _f64(inputs["running_mean"]), _f64(inputs["running_var"]),
                                       gamma, beta, eps)
    return BatchNormCandidates(split_steps(inputs["x"], case), inputs["x_eval"], fa, gamma, beta, eps, momentum,
                               join=lambda steps: join_steps(steps, case))


class CandidateSet:
    """Candidate profiles of one case: the error of an observation against each, and the distances
    between them, in tolerances (the scaled error of golden/tolerance.py over the output's tolerance,
    worst output deciding).  `groups` pairs a candidates object with its profiles; profiles of
    different groups may differ in more than conventions (the feature axis a default probe measures)."""

    def __init__(self, groups, tolerances: dict[str, float], floors: dict[str, float]):
        self.groups = groups
        self.profiles = [p for _, ps in groups for p in ps]
        self.tolerances = tolerances
        self.floors = floors  # each output's scale floor (golden/tolerance.py, output_floors)
        self.outputs = groups[0][0].OUTPUTS
        # each profile's variant of each convention, as arrays: selections are masks, not loops over dicts
        self.codes = {c: np.array([p[c] for p in self.profiles]) for c in self.profiles[0]}
        self._unique: dict[str, list[np.ndarray]] = {o: [] for o in self.outputs}
        self._index: dict[str, np.ndarray] = {}
        self._stacks: dict[str, list[tuple]] = {}
        for o in self.outputs:
            self._index[o] = self._collect(o)
            self._stacks[o] = self._stack(o)
        for cands, _ in groups:  # the set holds what it needs; bit-identical twins need not stay alive
            cands._memo.clear()
        self._pair: dict[tuple, float] = {}
        self._twins: dict[str, dict[tuple, dict[str, int]]] = {}

    def _collect(self, o: str) -> np.ndarray:
        """Each profile's index into the distinct arrays of output o (distinct by content: profiles that
        compute the same numbers by different routes share one, e.g. every trajectory after one step)."""
        by_id, by_content, index = {}, {}, []
        for cands, ps in self.groups:
            for p in ps:
                array = cands.output(o, p)
                if id(array) not in by_id:
                    digest = (array.shape, hashlib.blake2b(np.ascontiguousarray(array).view(np.uint8),
                                                           digest_size=16).digest())
                    if digest not in by_content:
                        by_content[digest] = len(self._unique[o])
                        self._unique[o].append(array)
                    by_id[id(array)] = by_content[digest]
                index.append(by_id[id(array)])
        return np.asarray(index)

    def _stack(self, o: str) -> list[tuple]:
        """The distinct arrays of output o stacked per shape, with each row's finiteness and scale, so an
        observation's errors against all of them are one vectorised step (golden/tolerance.py's scaled
        error where both sides are finite; the general function otherwise)."""
        stacks = []
        shapes = sorted({a.shape for a in self._unique[o]})
        for shape in shapes:
            rows = np.array([u for u, a in enumerate(self._unique[o]) if a.shape == shape])
            stack = np.stack([np.ravel(self._unique[o][u]) for u in rows]).astype(np.float64)
            finite = np.isfinite(stack).all(axis=1)
            scale = np.maximum(self.floors[o], np.abs(np.where(np.isfinite(stack), stack, 0.0)).max(axis=1, initial=0.0))
            for r, u in enumerate(rows):  # the rows replace the arrays: one copy in memory
                self._unique[o][u] = stack[r].reshape(shape)
            stacks.append((shape, rows, stack, finite, scale))
        return stacks

    def match(self, assignment: dict[str, str]) -> np.ndarray:
        """Mask of the profiles with these variants."""
        mask = np.ones(len(self.profiles), dtype=bool)
        for c, v in assignment.items():
            mask &= self.codes[c] == v
        return mask

    def twin(self, i: int, convention: str, variant: str) -> int | None:
        """The profile equal to profile i except that `convention` is `variant` (None if not a candidate)."""
        if convention not in self._twins:
            table: dict[tuple, dict[str, int]] = {}
            for k, p in enumerate(self.profiles):
                table.setdefault(tuple(sorted((c, v) for c, v in p.items() if c != convention)), {})[p[convention]] = k
            self._twins[convention] = table
        others = tuple(sorted((c, v) for c, v in self.profiles[i].items() if c != convention))
        return self._twins[convention][others].get(variant)

    def decide(self, members, convention: str) -> str:
        """What the plausible profiles `members` say about a convention: its variant when they agree;
        NOT_SHOWN when they differ only where it is inert (each member is within INERT tolerances of
        its twins with the other variants present); UNCLEAR otherwise."""
        present = {self.profiles[i][convention] for i in members}
        if len(present) == 1:
            return present.pop()
        for i in members:
            for variant in present:
                j = self.twin(i, convention, variant)
                if j is None or max(self.distance(i, j), self.distance(j, i)) > INERT:
                    return UNCLEAR
        return NOT_SHOWN

    def candidates_of(self, i: int):
        """The candidates object profile i belongs to."""
        for cands, ps in self.groups:
            if i < len(ps):
                return cands
            i -= len(ps)
        raise IndexError(i)

    def outputs_of(self, i: int) -> dict[str, np.ndarray]:
        return {o: self._unique[o][self._index[o][i]] for o in self.outputs}

    def errors(self, actual: dict[str, np.ndarray]) -> np.ndarray:
        """Each profile's error against the observed outputs, in tolerances.  A non-finite element that
        no profile gives (no NaN for a NaN, no inf of that sign for an inf) is left out here
        (judge/measure.py counts it): one NaN or overflow of the implementation's own must not hide
        which conventions the rest of the output shows.  Where some profile gives the same (0/0), it
        is evidence like any value."""
        worst = np.zeros(len(self.profiles))
        for o in self.outputs:
            a = np.asarray(actual[o], dtype=np.float64)
            per_unique = np.full(len(self._unique[o]), math.inf)
            for shape, rows, stack, finite, scale in self._stacks[o]:
                if a.shape != shape:
                    continue
                if np.isfinite(a).all() and finite.all():  # the common case, vectorised
                    diff = np.abs(stack - a.ravel()).max(axis=1, initial=0.0)
                    with np.errstate(divide="ignore", invalid="ignore"):  # a zero scale: golden/tolerance.divided
                        per_unique[rows] = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0),
                                                    np.where(diff == 0, 0.0, math.inf))
                    continue
                with np.errstate(invalid="ignore"):
                    flat = a.ravel()
                    explained = ((np.isnan(flat) & np.isnan(stack)) | (np.isinf(flat) & (flat == stack))).any(axis=0)
                per_unique[rows] = scaled_errors(a, [self._unique[o][u] for u in rows], self.floors[o],
                                                 ignore_nonfinite_actual=~explained.reshape(shape))
            worst = np.maximum(worst, per_unique[self._index[o]] / self.tolerances[o])
        return worst

    def distance(self, i: int, j: int) -> float:
        """The error profile i's outputs would have against profile j's, in tolerances (NaN against a
        number is infinitely far).  Not symmetric: the scale is j's, as for an observation."""
        worst = 0.0
        for o in self.outputs:
            a, b = int(self._index[o][i]), int(self._index[o][j])
            if a == b:
                continue
            if (o, a, b) not in self._pair:
                self._pair[(o, a, b)] = float(scaled_errors(self._unique[o][a], [self._unique[o][b]], self.floors[o])[0])
            worst = max(worst, self._pair[(o, a, b)] / self.tolerances[o])
        return worst

    def distance_matrix(self) -> np.ndarray:
        """distance(i, j) for every pair (the generator's decisiveness check): one scaled error per
        ordered pair of distinct arrays of each output, combined by index."""
        n = len(self.profiles)
        worst = np.zeros((n, n))
        for o in self.outputs:
            unique = self._unique[o]
            pair = np.zeros((len(unique), len(unique)))
            for a in range(len(unique)):
                pair[a] = scaled_errors(unique[a], unique, self.floors[o])
            idx = self._index[o]
            worst = np.maximum(worst, pair[np.ix_(idx, idx)] / self.tolerances[o])
        return worst


def _group_for_case(case, inputs, gamma, beta, eps, momentum, channel_axis, groups):
    if case.layer == "instance_norm_tracked":
        return InstanceNormTrackedCandidates(inputs["x"], inputs["x_eval"], channel_axis, gamma, beta, eps, momentum)
    x = inputs["x"]
    channels = np.shape(x)[ref.normalize_axes((channel_axis,), np.ndim(x))[0]]
    if case.layer == "instance_norm":
        return GroupNormCandidates(x, channel_axis, channels, gamma, beta, eps, layer="instance_norm")
    return GroupNormCandidates(x, channel_axis, groups or case.groups, gamma, beta, eps)
