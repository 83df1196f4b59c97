"""Generated cases (issue 21): case specifications drawn by hypothesis across the input space, with
their expected outputs from golden/reference.py in float64, computed on the fly.

A specification is the keyword arguments of a golden Case (JSON: it is the reproduction).  The space:
layer; rank 1-4 with sizes 1-6 (one axis up to 40); LayerNorm axes any non-empty subset, written
negative or positive; BatchNorm's feature axis anywhere; dtype; normal or constant inputs at offsets of
0 to 100 standard deviations and scales 1e-3 to 1e2; eps 0 to 0.1; momentum 0, 0.1, 0.5, 1 or None
(the cumulative average); 1 to 4 steps, whose batch sizes may change from step to step (`batch_sizes`:
golden/ragged.py); affine on or off, and with it gamma of either sign or mixed signs,
scaled by 1e-3 to 1e2, and beta scaled by 0 to 1e2 (Case fields; a specification without them, as older
reproductions are, keeps the catalog's gamma in [0.5, 2] and beta ~ N(0, 1)).  eps 0 is drawn only
where every group varies (a constant group under eps 0 is 0/0, whose rounded value no formula fixes).
The input is handed in a memory layout (`layout`: C order, Fortran order, a strided or a transposed view;
golden/layouts.py), and judged against the same reference: results must not depend on it.

A generated case declares no convention (`shows` is empty): it judges accuracy against the documented
profile, the contracts, non-finite values and the rounding bias -- never a convention it cannot prove.
Its name says the region it lies in (layer, dtype, `offset`, `one_value_per_channel`, `eps0`), which is what
the expectations' rules for generated cases match; inputs are seeded by the name, like any case's.

GroupNorm and InstanceNorm specifications (issue 22) are searched by --explore only: the fixed draw
keeps its layers, and so its cells.

The default run draws DEFAULT_EXAMPLES specifications from SEED (two runs draw the same cases); a
deeper search (`--explore=N`) draws N more per adapter with hypothesis's database and shrinking; `normconf
generated ADAPTER SPEC --save NAME` makes a found case a case of the catalog (save()).
"""
from __future__ import annotations

import functools
import importlib.metadata
import json
import re
import zlib
from pathlib import Path

from normconf.golden import cases, fixtures
from normconf.golden.cases import Case
from normconf.golden.generate import build_fixture, prepare
from normconf.golden.ragged import batch_axis

DEFAULT_EXAMPLES = 12
SEED = 21
LAYER_TOKENS = {"layer_norm": "ln", "batch_norm": "bn", "batch_norm_eval": "bneval", "rms_norm": "rms",
                "group_norm": "gn", "instance_norm": "in", "instance_norm_tracked": "intr"}
# the layers of the fixed draw (its draws stay as they were); RMSNorm specifications are judged when given
# (`normconf generated`), not drawn; --explore searches the grouped ones too
DRAWN_LAYERS = ("batch_norm", "batch_norm_eval", "layer_norm")
GROUPED_LAYERS = ("group_norm", "instance_norm", "instance_norm_tracked")
MAX_ELEMENTS = 4096  # per batch: a generated case costs milliseconds, not seconds


def case_specs(grouped: bool = False):
    """The hypothesis strategy of one case specification (imported here: a run whose draw is stored
    never imports hypothesis); `grouped`: of GroupNorm and InstanceNorm instead (a search of its own,
    so neither space dilutes the other's)."""
    from hypothesis import strategies as st
    return st.composite(_draw_grouped_spec if grouped else _draw_spec)()


def _draw_spec(draw) -> dict:
    """One case specification (Case keyword arguments, JSON values)."""
    from hypothesis import strategies as st
    layer = draw(st.sampled_from(DRAWN_LAYERS))
    rank = draw(st.integers(1 if layer in ("layer_norm", "rms_norm") else 2, 4))
    shape = draw(st.lists(st.integers(1, 6), min_size=rank, max_size=rank))
    if draw(st.booleans()):  # one longer axis
        shape[draw(st.integers(0, rank - 1))] = draw(st.integers(7, 40))
    if layer == "layer_norm":
        chosen = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
        axes = [a - rank if draw(st.booleans()) else a for a in sorted(chosen)]
    elif layer == "rms_norm":  # the last axis, as every framework's RMSNorm (golden/cases.py)
        axes = [-1 if draw(st.booleans()) else rank - 1]
    else:
        axis = draw(st.integers(0, rank - 1))
        axes = [axis - rank if draw(st.booleans()) else axis]
    distribution = draw(st.sampled_from(["normal", "normal", "normal", "constant"]))
    scale = draw(st.sampled_from([1e-3, 1.0, 1.0, 100.0]))
    loc = draw(st.sampled_from([0.0, 0.0, 0.5, 3.0, 100.0])) * draw(st.sampled_from([1.0, -1.0])) * scale
    spec = {"layer": layer, "shape": shape, "axes": axes,
            "dtype": draw(st.sampled_from(["float32", "float32", "float64", "float16", "bfloat16"])),
            "distribution": distribution, "loc": loc, "scale": scale, "affine": draw(st.booleans()),
            "eps": draw(st.sampled_from([1e-5, 1e-5, 1e-3, 0.1, 0.0]))}
    if spec["affine"]:
        # not 1e2 in float16: gamma 100 at an offset of 1e4 puts y beyond 65504, where the dtype's answer is inf
        # and the judge (comparing with the float64 formula) counts a non-finite value (found by --explore)
        large = [] if spec["dtype"] == "float16" else [1e2]
        spec["gamma_scale"] = draw(st.sampled_from([1.0, 1.0, 1e-3, *large]))
        spec["gamma_sign"] = draw(st.sampled_from(["positive", "positive", "negative", "mixed"]))
        spec["beta_scale"] = draw(st.sampled_from([1.0, 1.0, 0.0, 1e2]))
    spec["layout"] = draw(st.sampled_from(["c", "fortran", "strided", "transposed"]))
    if layer == "batch_norm":
        spec["momentum"] = draw(st.sampled_from([0.1, 0.1, 0.0, 0.5, 1.0, None]))
        spec["steps"] = draw(st.integers(1, 4))
        if spec["steps"] >= 2 and draw(st.booleans()):
            spec["batch_sizes"] = _batch_sizes(draw, shape, axes[0], spec["steps"])
    if spec["eps"] == 0.0 and not _every_group_varies(spec):
        spec["eps"] = 1e-5
    return spec


def _draw_grouped_spec(draw) -> dict:
    """One GroupNorm / InstanceNorm specification: rank 3-4, the channel axis anywhere but the batch's,
    a number of groups dividing the channels; running statistics over 1-4 steps when tracked."""
    from hypothesis import strategies as st
    layer = draw(st.sampled_from(GROUPED_LAYERS))
    rank = draw(st.integers(3, 4))
    shape = draw(st.lists(st.integers(1, 6), min_size=rank, max_size=rank))
    axis = draw(st.integers(1, rank - 1))
    if layer == "group_norm":
        groups = draw(st.sampled_from([1, 2, 3, 4]))
        shape[axis] = groups * draw(st.integers(1, 4))
    distribution = draw(st.sampled_from(["normal", "normal", "normal", "constant"]))
    scale = draw(st.sampled_from([1e-3, 1.0, 1.0, 100.0]))
    loc = draw(st.sampled_from([0.0, 0.0, 0.5, 3.0, 100.0])) * draw(st.sampled_from([1.0, -1.0])) * scale
    spec = {"layer": layer, "shape": shape, "axes": [axis - rank if draw(st.booleans()) else axis],
            "dtype": draw(st.sampled_from(["float32", "float32", "float64", "float16", "bfloat16"])),
            "distribution": distribution, "loc": loc, "scale": scale, "affine": draw(st.booleans()),
            "eps": draw(st.sampled_from([1e-5, 1e-5, 1e-3, 0.1]))}
    if layer == "group_norm":
        spec["groups"] = groups
    if layer == "instance_norm_tracked":
        spec["momentum"] = draw(st.sampled_from([0.1, 0.1, 0.0, 0.5, 1.0]))
        spec["steps"] = draw(st.integers(1, 4))
    return spec


def _batch_sizes(draw, shape, feature_axis, steps) -> list[int]:
    """Each step's length of the batch axis (golden/ragged.py): the case's own and one other, so two batch
    shapes at most (JAX compiles once per shape), never all the same."""
    from hypothesis import strategies as st
    own = shape[batch_axis(shape, feature_axis)]
    other = draw(st.integers(1, 8).filter(lambda n: n != own))
    sizes = draw(st.lists(st.sampled_from([own, other]), min_size=steps, max_size=steps))
    if len(set(sizes)) < 2:
        sizes[-1] = other if sizes[0] == own else own
    return sizes


def _every_group_varies(spec: dict) -> bool:
    """Normal inputs at offset 0 with at least two values per group (a float16 group of two values at a
    large offset can round to one value)."""
    return spec["distribution"] == "normal" and spec["loc"] == 0.0 and reduction_size(spec) >= 2


def reduction_size(spec: dict) -> int:
    return to_case(spec, "probe").reduction_size


def name_of(spec: dict) -> str:
    """gen_<layer>_<dtype>[_offset][_one_value_per_channel | _one_value_per_group][_eps0]_<crc32 of the JSON>."""
    tokens = ["gen", LAYER_TOKENS[spec["layer"]], spec["dtype"]]
    if spec.get("batch_sizes"):
        tokens.append("ragged")
    if spec["loc"] != 0.0 and (spec["distribution"] == "constant" or abs(spec["loc"]) >= 2 * spec["scale"]):
        tokens.append("offset")
    if spec["layer"] == "batch_norm" and reduction_size(spec) == 1:
        tokens.append("one_value_per_channel")
    if spec["eps"] == 0.0:  # a framework may refuse it (torch's BatchNorm training does)
        tokens.append("eps0")
    if spec["layer"] in GROUPED_LAYERS and reduction_size(spec) == 1:
        tokens.append("one_value_per_group")
    tokens.append(f"{zlib.crc32(to_json(spec).encode()):08x}")
    return "_".join(tokens)


def to_json(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def to_case(spec: dict, name: str | None = None) -> Case:
    kwargs = dict(spec, shape=tuple(spec["shape"]), axes=tuple(spec["axes"]))
    if "batch_sizes" in spec:
        kwargs["batch_sizes"] = tuple(spec["batch_sizes"])
    return Case(name=name or name_of(spec), family="generated", **kwargs)


@functools.lru_cache(maxsize=4)
def draw_specs(examples: int = DEFAULT_EXAMPLES, from_seed: int = SEED, store: Path | None = None) -> dict[str, dict]:
    """name -> specification: `examples` distinct draws, the same on every run (no database).  With a
    `store` directory the draw is kept there, keyed by hypothesis's version, the seed, the number and this
    module's source, so a later run reads it back instead of importing hypothesis and drawing again."""
    key = f"{importlib.metadata.version('hypothesis')}-{from_seed}-{examples}-{zlib.crc32(Path(__file__).read_bytes()):08x}"
    path = None if store is None else Path(store) / f"generated-{key}.json"
    if path is not None and path.is_file():
        return json.loads(path.read_text())
    found = _draw(examples, from_seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{id(found)}.tmp")
        partial.write_text(json.dumps(found, sort_keys=True))
        partial.replace(path)  # atomic: xdist workers may write the same draw at once
    return found


def _draw(examples: int, from_seed: int) -> dict[str, dict]:
    from hypothesis import HealthCheck, Phase, given, seed, settings
    found: dict[str, dict] = {}

    @seed(from_seed)
    @settings(max_examples=examples * 4, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case_specs())
    def collect(spec):
        if len(found) < examples:
            found.setdefault(name_of(spec), spec)

    collect()
    return found


@functools.lru_cache(maxsize=256)
def fixture_of(spec_json: str) -> fixtures.LoadedFixture:
    """The case's fixture, in memory: inputs from its name's seed, expected outputs and tolerances
    from golden/reference.py as for a committed fixture."""
    spec = json.loads(spec_json)
    fx = prepare(to_case(spec))
    return fixtures.in_memory(fx, f"generated {name_of(spec)}")


def reproduction(adapter_name: str, spec: dict) -> str:
    """One line that judges this specification again."""
    return f"normconf generated {adapter_name} '{to_json(spec)}'"


def save(spec: dict, name: str) -> Path:
    """Make the specification a case of the catalog under `name`: an entry of the regressions file beside
    the fixtures, its fixture built and checked like any case's, and the manifest rewritten.  Returns the
    fixture's path.  A name that is taken, or not lower-case letters, digits and underscores, is refused."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name or ""):
        raise ValueError(f"--save {name!r}: a case name is lower-case letters, digits and underscores")
    if name in cases.CASES:
        raise ValueError(f"--save {name!r}: the catalog has a case of that name already")
    path = cases.regressions_file()
    saved = json.loads(path.read_text()) if path.is_file() else {}
    saved[name] = {"seed_name": name_of(spec), "spec": spec}
    case = cases.regression_case(name, saved[name])
    fixture = fixtures.golden_dir() / fixtures.file_name(name)
    fixture.write_bytes(fixtures.to_bytes(build_fixture(case)))  # raises NotDecisive before anything is kept
    path.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
    cases.CASES[name] = case
    on_disk = {p.name: p.read_bytes() for p in fixtures.golden_dir().glob("*.npz")}
    (fixtures.golden_dir() / fixtures.MANIFEST).write_text(fixtures.manifest_text(on_disk))
    return fixture
