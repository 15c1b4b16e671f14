"""The hard-wired cost model (``arch: hardwired``): a model's weights as metal wires (HNLPU).

HNLPU (Liu et al., arXiv 2508.16151, ASPLOS '26) builds gpt-oss-120b into 16 chips. Every
weight is a wire from an input to the accumulator of its FP4 value, so no weight is ever
fetched. Section numbers below are the ASPLOS text's.

Dataflow, as ``hwmodels/kernels/hardwired_gemv.py`` performs it:

- A GEMV runs on a Hardwired-Neuron array (Sec. 3.1, Fig. 4). Inputs arrive bit-serially,
  ``act_bits`` cycles per token. Every input wire with a nonzero weight adds its bit to the
  POPCNT accumulator of its weight's value: one popcount addition per wire and bit. Each of
  the 16 accumulator sums is multiplied by its constant, and a 15-adder tree sums the 16
  products. Each layer's matrices have their own arrays, so the layers run at once.
- Pipeline (Sec. 5.2): 6 stages per layer, so 6 x 36 = 216 tokens are in flight.
  Continuous batching keeps them full. The arrays are private to a layer. The links, the
  VEX and the attention buffers are shared by all layers, so in steady state they carry
  every layer's work of every token.
- Attention (Sec. 4.3, App. A): the VEX reads cached K and V from the attention buffers,
  32 head vectors per cycle per chip. KV beyond the buffers' 16 x 320 MB lives in HBM and
  is streamed from there. Embedding rows also come from HBM.
- Collectives (App. A, Fig. 10) run over CXL between the 4 x 4 chips:
  - Q/K/V partial sums: reduced in each column;
  - softmax statistics and partial outputs: all-reduced in each column;
  - the O projection: all-reduced in each row, then all-gathered in each column;
  - the experts' outputs: all-reduced over all 16 chips;
  - the logits: all-gathered.
  Each collective moves its partial sums in full, ``2 (g - 1) V`` values for an all-reduce
  of ``V`` values in a group of ``g`` chips. Its latency is one link latency per step.

``action_counts`` turns an ``OpTable`` into these actions (``HardwiredActions``).
``resource_times`` and ``step_time_from`` compute time from the actions only, and
``dynamic_energy_j`` computes energy from the actions only.

A step takes the longest of these:
- its pipeline latency: one token's trip through every op, times ``max(1, tokens / 216)``;
- the work on each shared resource over that resource's rate: links, VEX, buffers, HBM;
- the longest bit-serial pass of one array.
Throughput is therefore 216 / token latency until a shared resource saturates.

Energy per action (``Energies.of``) comes from Table 1's block powers, each marked (est.):
- VEX, buffer, interconnect and HBM PHY: block power over the block's full rate at the clock.
- HN array: its power at Table 2's throughput. The array is idle between passes, so its
  full rate says nothing about its power; its energy is split over popcount, multiply and
  adder actions by their full-adder widths.
- Static power: the rest of the system's 6.9 kW at that operating point.

The chip runs only the model wired into it. ``estimate`` refuses an ``OpTable`` whose matrices
are not the wired ones (``check_wired``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import ClassVar

import numpy as np

from hwmodels.cost_table import CostTable
from hwmodels.device_spec import DeviceSpec
from hwmodels.placement import Placement
from hwmodels.registry import register
from workloads.errors import ConfigError
from workloads.graph import OpTable, build_ops
from workloads.model_spec import load_model
from workloads.quant import Quant

HN_KINDS = ("gemm", "router")
"""Op kinds that run on the Hardwired-Neuron arrays."""


@dataclass(frozen=True)
class Chip:
    """The system's parameters (``hardwired`` block of its catalog entry), in SI units.

    The model wired into it gives ``concurrency`` (stages x layers) and the collective plan.
    """

    model: str
    n_chips: int
    grid_rows: int
    grid_cols: int
    clock_hz: float
    act_bits: int
    weight_values: int
    nonzero_fraction: float
    concurrency: float
    links_per_chip: float
    link_bytes_per_s: float
    link_latency_s: float
    link_efficiency: float
    link_value_bytes: float
    kv_value_bytes: float
    embedding_value_bytes: float
    buffer_bytes: float
    buffer_bytes_per_s: float
    vex_vectors_per_cycle: float

    @classmethod
    def of(cls, device: DeviceSpec) -> Chip:
        b = device.extra.get("hardwired")
        model = device.extra.get("hardwired_model")
        if b is None or model is None:
            raise ConfigError(
                f"device {device.name!r} has no 'hardwired' block (the wired model, chips, clock, links...)"
            )
        spec = _spec(model)
        return cls(
            model=model,
            n_chips=int(b["n_chips"]),
            grid_rows=int(b["grid_rows"]),
            grid_cols=int(b["grid_cols"]),
            clock_hz=b["clock_GHz"] * 1e9,
            act_bits=int(b["act_bits"]),
            weight_values=int(b["weight_values"]),
            nonzero_fraction=b["nonzero_weight_fraction"],
            concurrency=b["stages_per_layer"] * spec.n_layers,
            links_per_chip=b["links_per_chip"],
            link_bytes_per_s=b["link_GBps"] * 1e9,
            link_latency_s=b["link_latency_ns"] * 1e-9,
            link_efficiency=b["link_efficiency"],
            link_value_bytes=b["link_value_bytes"],
            kv_value_bytes=b["kv_value_bytes"],
            embedding_value_bytes=b["embedding_value_bytes"],
            buffer_bytes=b["buffer_MB"] * 1e6,
            buffer_bytes_per_s=b["buffer_TBps"] * 1e12,
            vex_vectors_per_cycle=b["vex_kv_vectors_per_cycle"],
        )

    @property
    def tree_levels(self) -> int:
        """Adder-tree levels after the bit-serial pass: log2 of the 16 products."""
        return int(np.ceil(np.log2(self.weight_values)))

    @property
    def link_rate(self) -> float:
        """Payload bytes per second over every link of the system, one direction each."""
        return self.n_chips * self.links_per_chip * self.link_bytes_per_s * self.link_efficiency

    @property
    def vex_rate(self) -> float:
        """K or V head vectors per second the VEX units of all chips read."""
        return self.n_chips * self.vex_vectors_per_cycle * self.clock_hz

    @property
    def buffer_rate(self) -> float:
        """Bytes per second of all chips' attention buffers."""
        return self.n_chips * self.buffer_bytes_per_s


@dataclass(frozen=True)
class HardwiredActions:
    """Actions of a step, per op and occurrence (arrays of shape ``(n_ops, *sweep)``), and
    ``count``, each op's occurrences (layers).

    tokens : token rows of the step (the same for every op);
    bitserial_cycles : input cycles of the op's busiest array: ``act_bits`` per token through it;
    popcount_adds : one per nonzero-weight input wire per input bit;
    const_mults : 16 per output neuron per token (one per FP4 value's accumulator);
    tree_adds : 15 per output neuron per token (the 16-input adder tree);
    vex_kv_vectors : cached K and V head vectors the VEX reads (attention);
    sram_bytes : attention-buffer bytes, the KV read and the new KV written;
    hbm_bytes : HBM bytes, the KV beyond the buffers and the embedding rows (no weights, ever);
    link_bytes : bytes the op's collectives put on the CXL links (all links together);
    collective_steps : collective steps, one link latency each.
    """

    tokens: np.ndarray
    bitserial_cycles: np.ndarray
    popcount_adds: np.ndarray
    const_mults: np.ndarray
    tree_adds: np.ndarray
    vex_kv_vectors: np.ndarray
    sram_bytes: np.ndarray
    hbm_bytes: np.ndarray
    link_bytes: np.ndarray
    collective_steps: np.ndarray
    count: np.ndarray

    @classmethod
    def action_fields(cls) -> tuple[str, ...]:
        """Every field but ``count``."""
        return tuple(f.name for f in fields(cls) if f.name != "count")


def gemv_actions(n, k, tokens, chip: Chip, nnz=None) -> HardwiredActions:
    """One HN array of ``n`` neurons and ``k`` input wires passing ``tokens`` tokens, in closed
    form. These are the counts of ``hardwired_gemv``. ``nnz`` is the number of nonzero weights
    (default ``n k`` times the chip's nonzero fraction)."""
    n, k, tokens = (np.asarray(v, dtype=float) for v in (n, k, tokens))
    nnz = n * k * chip.nonzero_fraction if nnz is None else np.asarray(nnz, dtype=float)
    zero = np.zeros(np.broadcast_shapes(n.shape, k.shape, tokens.shape, nnz.shape))
    return HardwiredActions(
        tokens=tokens + zero,
        bitserial_cycles=tokens * chip.act_bits + zero,
        popcount_adds=tokens * nnz * chip.act_bits + zero,
        const_mults=tokens * n * chip.weight_values + zero,
        tree_adds=tokens * n * (chip.weight_values - 1) + zero,
        vex_kv_vectors=zero,
        sram_bytes=zero,
        hbm_bytes=zero,
        link_bytes=zero,
        collective_steps=zero,
        count=np.ones(()),
    )


@lru_cache(maxsize=16)
def _spec(model: str):
    return load_model(model)


def collective_plan(chip: Chip) -> dict[str, tuple[float, float]]:
    """Per token: (values put on the links, collective steps) of each op's collectives on the
    ``grid_rows x grid_cols`` fabric (App. A, Fig. 10). An all-reduce of ``V`` values in a group
    of ``g`` sends ``2 (g - 1) V`` (reduce, then broadcast: 2 steps); a reduce to one chip
    ``(g - 1) V`` (1 step); an all-gather of slices ``V / g`` from each of ``g`` chips ``(g - 1) V``."""
    spec = _spec(chip.model)
    r, c, n = chip.grid_rows, chip.grid_cols, chip.n_chips
    h, d = spec.hidden_size, spec.head_dim
    q_col = spec.n_heads / c * d  # query (and attention-output) values of one column's heads
    kv_col = spec.n_kv_heads / c * d  # key (or value) values of one column's KV heads
    return {
        # Q all-reduced in each column; new K and V each reduced to chip (position mod 4)
        "qkv_proj": (c * 2 * (r - 1) * q_col + 2 * c * (r - 1) * kv_col, 2.0),
        # softmax max and sum per query head, then partial outputs, all-reduced in each column
        "attention": (c * 2 * (r - 1) * (q_col + 2 * spec.n_heads / c), 4.0),
        # partial O all-reduced in each row (h / r values), then all-gathered in each column
        "o_proj": (r * 2 * (c - 1) * h / r + n * (r - 1) * h / r, 3.0),
        # the weighted expert outputs all-reduced over all chips (row, then column)
        "experts_down": (2 * (n - 1) * h, 4.0),
        # every chip's slice of the logits all-gathered (row, then column)
        "lm_head": ((n - 1) * spec.vocab_size, 2.0),
    }


def _column(ops: OpTable, values) -> np.ndarray:
    """A per-op vector as a column that broadcasts against ``(n_ops, *sweep)``."""
    return np.asarray(values).reshape((-1,) + (1,) * (ops.flops.ndim - 1))


def action_counts(ops: OpTable, chip: Chip) -> HardwiredActions:
    """The actions of the step ``ops`` describes on the hard-wired system (vectorized).

    HN ops:
    - token rows through the matrices: ``flops / (2 n k)``. For experts this is every
      routed token; ``m`` is the rows of one expert's array.
    - popcount additions, constant multiplies and adder-tree adds: as in ``gemv_actions``.

    Attention ops:
    - query-key pairs: ``flops / (4 d)``.
    - K and V vectors: twice the pairs over the GQA group.
    - KV bytes at the chip's KV width, read and newly written.
    - The resident KV of the step, per layer: the ratio of the op's read and written bytes
      times the new tokens, so the op's own KV format cancels. Its share beyond the buffers
      also goes through HBM.

    Links: ``collective_plan`` per token.
    """
    spec = _spec(chip.model)
    shape = np.broadcast_shapes(
        ops.flops.shape,
        ops.m.shape,
        ops.n.shape,
        ops.k.shape,
        ops.kv_read_bytes.shape,
        ops.kv_write_bytes.shape,
    )
    names = ops.name
    kind = _column(ops, ops.kind)
    full = lambda a: np.broadcast_to(np.asarray(a, dtype=float), shape)  # noqa: E731
    first_proj = int(np.flatnonzero(names == "qkv_proj")[0])
    tokens = full(ops.m[first_proj])
    hn = np.isin(kind, HN_KINDS)
    nk = np.where(hn, ops.n * ops.k, 1.0)
    rows = np.where(hn, ops.flops / (2.0 * nk), 0.0)
    g = gemv_actions(np.where(hn, ops.n, 0.0), np.where(hn, ops.k, 0.0), rows, chip)
    bitserial = np.where(hn, ops.m * chip.act_bits, 0.0)  # the busiest array: one expert's rows

    att = kind == "attention"
    d = spec.head_dim
    group = _column(ops, ops.kv_group)
    vectors = np.where(att, 2.0 * ops.flops / (4.0 * d) / group, 0.0)
    kv_position_bytes = spec.n_kv_heads * 2.0 * d * chip.kv_value_bytes
    kv_new = np.where(att, tokens * kv_position_bytes, 0.0)
    kv_bytes = vectors * d * chip.kv_value_bytes + kv_new
    written = np.where(ops.kv_write_bytes > 0, ops.kv_write_bytes, 1.0)
    resident = np.where(att, tokens * (ops.kv_read_bytes / written + 1.0) * kv_position_bytes, 0.0)
    footprint = (_column(ops, ops.count) * resident).sum(axis=0)
    capacity = chip.n_chips * chip.buffer_bytes
    with np.errstate(divide="ignore", invalid="ignore"):
        overflow = np.where(
            footprint > capacity, 1.0 - capacity / np.where(footprint > 0, footprint, 1.0), 0.0
        )
    embedding = np.where(
        kind == "embedding", tokens * spec.hidden_size * chip.embedding_value_bytes * chip.n_chips, 0.0
    )

    plan = collective_plan(chip)
    values = _column(ops, [plan.get(str(nm), (0.0, 0.0))[0] for nm in names])
    steps = _column(ops, [plan.get(str(nm), (0.0, 0.0))[1] for nm in names])
    return HardwiredActions(
        tokens=tokens,
        bitserial_cycles=full(bitserial),
        popcount_adds=full(np.where(hn, g.popcount_adds, 0.0)),
        const_mults=full(np.where(hn, g.const_mults, 0.0)),
        tree_adds=full(np.where(hn, g.tree_adds, 0.0)),
        vex_kv_vectors=full(vectors),
        sram_bytes=full(kv_bytes),
        hbm_bytes=full(overflow * kv_bytes + embedding),
        link_bytes=full(tokens * values * chip.link_value_bytes),
        collective_steps=full(tokens * steps),
        count=np.asarray(ops.count, dtype=float),
    )


def _per_step(a: HardwiredActions, x: np.ndarray) -> np.ndarray:
    return (a.count.reshape((-1,) + (1,) * (x.ndim - 1)) * x).sum(axis=0)


def op_latency_s(a: HardwiredActions, chip: Chip) -> np.ndarray:
    """Per op and occurrence, the time one token spends in it when no other token competes.
    It is the sum of:
    - the array's bit-serial pass and adder tree;
    - its share of the VEX's reads (one token's K and V over all chips);
    - the collective steps at one link latency each;
    - the token's link bytes over every link."""
    with np.errstate(divide="ignore", invalid="ignore"):
        per_token = lambda x: np.where(a.tokens > 0, x / np.where(a.tokens > 0, a.tokens, 1.0), 0.0)  # noqa: E731
        hn = np.where(a.bitserial_cycles > 0, (chip.act_bits + chip.tree_levels) / chip.clock_hz, 0.0)
    return (
        hn
        + per_token(a.vex_kv_vectors) / chip.vex_rate
        + per_token(a.collective_steps) * chip.link_latency_s
        + per_token(a.link_bytes) / chip.link_rate
    )


RESOURCES = ("latency", "hn", "vex", "sram", "hbm", "link")
"""What may bound a step: the pipeline's latency, the busiest HN array's bit-serial pass, and
the shared VEX units, attention buffers, HBM and CXL links."""
RESOURCE_BOUND = {"latency": "overhead", "hn": "compute", "vex": "compute", "sram": "memory", "hbm": "memory"}
"""The ``CostTable`` term each resource is reported under (``link`` is itself)."""


def resource_times(a: HardwiredActions, chip: Chip, hbm_bytes_per_s: float) -> dict[str, np.ndarray]:
    """Seconds each resource needs for the step (sweep shape), from the actions only.

    latency : one token's trip through every op, times ``max(1, tokens / concurrency)``: with
        fewer tokens than pipeline slots the step waits for the trip; with more, every slot
        holds a token in turn.
    hn : the busiest array's bit-serial cycles (each matrix has its own arrays).
    vex, sram, hbm, link : the step's work over the rate of all chips' units together.
    """
    tokens = a.tokens[0]
    trip = _per_step(a, op_latency_s(a, chip))
    return {
        "latency": np.maximum(1.0, tokens / chip.concurrency) * trip,
        "hn": a.bitserial_cycles.max(axis=0) / chip.clock_hz,
        "vex": _per_step(a, a.vex_kv_vectors) / chip.vex_rate,
        "sram": _per_step(a, a.sram_bytes) / chip.buffer_rate,
        "hbm": _per_step(a, a.hbm_bytes) / hbm_bytes_per_s,
        "link": _per_step(a, a.link_bytes) / chip.link_rate,
    }


def step_time_from(a: HardwiredActions, chip: Chip, hbm_bytes_per_s: float) -> np.ndarray:
    """The step's time (s): its slowest resource (``resource_times``)."""
    return np.max(np.stack(list(resource_times(a, chip, hbm_bytes_per_s).values())), axis=0)


@dataclass(frozen=True)
class Energies:
    """Joules per action and the static power (W) of the system, all (est.) from Table 1's block
    powers, as the paper gives no energy per action:

    - vex_kv_vector, sram_byte, link_byte: VEX, attention-buffer and interconnect power over the
      block's full rate at the 1.0 GHz clock: 32 vectors per cycle, 80 TB/s, 6 links x 128 GB/s.
      These are the lowest energies the block's power allows.
    - hbm_byte: the memory type's energy per byte, plus the HBM PHY's power over its module's
      bandwidth.
    - popcount_add, const_mult, tree_add: the HN array's 16 x 76.92 W over its actions at Table 2's
      249,960 tokens/s (216 sequences at 2K). The array's full rate says nothing about its power:
      each layer's array is idle between passes. The energy is split by full-adder widths: a popcount
      addition is 1; a constant multiply is the accumulator's width (input bits + log2(hidden + 1));
      an adder-tree add is that width + 3.
    - static_w: the system's 6.9 kW less what these actions draw at that rate. This covers leakage,
      clocks, idle PHYs and the system around the chips.
    """

    popcount_add: float
    const_mult: float
    tree_add: float
    vex_kv_vector: float
    sram_byte: float
    hbm_byte: float
    link_byte: float
    static_w: float

    @classmethod
    def of(cls, device: DeviceSpec) -> Energies:
        """The device's energies (cached per parameter set)."""
        b = device.extra["hardwired"]
        key = (
            device.name,
            tuple(sorted(b.items())),
            device.memory.bw_bytes_per_s,
            device.memory.energy_j_per_byte,
        )
        return _energies(key, device)


_ENERGY_CACHE: dict[tuple, Energies] = {}


def _energies(key: tuple, device: DeviceSpec) -> Energies:
    if key in _ENERGY_CACHE:
        return _ENERGY_CACHE[key]
    b, chip = device.extra["hardwired"], Chip.of(device)
    spec = _spec(chip.model)
    f = chip.clock_hz
    # VEX, buffer, links, HBM PHY: block power over the block's full rate at the clock (est.)
    vex = b["vex_power_W"] / (chip.vex_vectors_per_cycle * f)
    sram = b["buffer_power_W"] / chip.buffer_bytes_per_s
    link = b["interconnect_power_W"] / (chip.links_per_chip * chip.link_bytes_per_s)
    hbm = device.memory.energy_j_per_byte + b["hbm_phy_power_W"] / (
        device.memory.bw_bytes_per_s / chip.n_chips
    )
    # HN array: its power at the rated point, over its actions there, split by full-adder width
    rated = build_ops(
        spec, Quant.from_name("fp16"), phase="decode", batch=chip.concurrency, context=b["rated_context"]
    )
    a = action_counts(rated, chip)
    per_token = {
        f_: float(_per_step(a, getattr(a, f_)) / chip.concurrency) for f_ in HardwiredActions.action_fields()
    }
    acc_bits = chip.act_bits + np.ceil(np.log2(spec.hidden_size + 1))  # width of an accumulator sum
    fa = (
        per_token["popcount_adds"]
        + acc_bits * per_token["const_mults"]
        + (acc_bits + 3) * per_token["tree_adds"]
    )
    rate = b["rated_tokens_per_s"]
    e_fa = chip.n_chips * b["hn_power_W"] / rate / fa
    partial = Energies(e_fa, acc_bits * e_fa, (acc_bits + 3) * e_fa, vex, sram, hbm, link, 0.0)
    dynamic_w = rate * sum(per_token[f_] * getattr(partial, e_) for f_, e_ in _ENERGY_OF.items())
    out = replace(partial, static_w=max(device.tdp_w - dynamic_w, 0.0))
    _ENERGY_CACHE[key] = out
    return out


_ENERGY_OF = {
    "popcount_adds": "popcount_add",
    "const_mults": "const_mult",
    "tree_adds": "tree_add",
    "vex_kv_vectors": "vex_kv_vector",
    "sram_bytes": "sram_byte",
    "hbm_bytes": "hbm_byte",
    "link_bytes": "link_byte",
}
"""Action field -> its energy in ``Energies`` (the other fields cost time, not energy)."""


def dynamic_energy_j(a: HardwiredActions, e: Energies) -> np.ndarray:
    """Per op and step (count included): every action times its energy."""
    c = a.count.reshape((-1,) + (1,) * (a.tokens.ndim - 1))
    return c * sum(getattr(a, f_) * getattr(e, name) for f_, name in _ENERGY_OF.items())


@lru_cache(maxsize=16)
def wired_matrices(model: str) -> dict[str, tuple[float, float, float]]:
    """The matrices wired into a chip built for ``model``: op name -> (k inputs, n outputs, layers)."""
    ops = build_ops(_spec(model), Quant.from_name("fp16"), phase="decode", batch=1, context=1)
    hn = np.isin(ops.kind, HN_KINDS)
    return {
        str(nm): (float(np.ravel(k)[0]), float(np.ravel(n)[0]), float(c))
        for nm, k, n, c in zip(ops.name[hn], ops.k[hn], ops.n[hn], ops.count[hn], strict=True)
    }


def check_wired(ops: OpTable, chip: Chip, placement: Placement | None = None) -> None:
    """Raise ``ConfigError`` unless ``ops`` is a step of the model wired into the chip, run on
    the whole system (``tp = pp = ep = 1``): every GEMM must be a wired matrix, with its shape,
    occurring a whole number of times its wired layers (a step may repeat the model)."""
    if placement is not None and (placement.tp, placement.pp, placement.ep) != (1, 1, 1):
        raise ConfigError(
            f"the hard-wired system runs {chip.model} on its {chip.n_chips} chips as one device; "
            f"expected tp = pp = ep = 1, got tp={placement.tp}, pp={placement.pp}, ep={placement.ep}"
        )
    wired = wired_matrices(chip.model)
    hn = np.isin(ops.kind, HN_KINDS)
    for nm, k, n, c in zip(ops.name[hn], ops.k[hn], ops.n[hn], ops.count[hn], strict=True):
        shape = (float(np.ravel(k)[0]), float(np.ravel(n)[0]), float(c))
        have_shape = wired.get(str(nm))
        layers_ok = have_shape is not None and c > 0 and (c / have_shape[2]) == round(c / have_shape[2])
        if have_shape is None or have_shape[:2] != shape[:2] or not layers_ok:
            have = ", ".join(f"{w} {int(s[0])}x{int(s[1])} x{int(s[2])}" for w, s in wired.items())
            raise ConfigError(
                f"this chip is hard-wired for {chip.model}; the step's {nm} ({int(shape[0])} inputs x "
                f"{int(shape[1])} outputs, {int(shape[2])} layers) is not one of its wired matrices ({have}). "
                f"A hard-wired chip runs only the model built into its metal: estimate {chip.model}"
            )
    if "qkv_proj" not in set(ops.name):
        raise ConfigError(f"this chip is hard-wired for {chip.model}; the step has no qkv_proj op of it")


@register
class HardwiredCostModel:
    """Steps of the one model wired into a hard-wired system (HNLPU): a pipeline whose time is
    the slowest of its latency and its shared resources."""

    arch: ClassVar[str] = "hardwired"

    def estimate(self, ops: OpTable, device: DeviceSpec, placement: Placement | None = None) -> CostTable:
        """The step's ``CostTable``. The step's time is split over its ops in proportion to each op's
        latency and its on-chip work (links, VEX, buffers). The ops overlap in the pipeline, so the
        split is an attribution, and every op carries the step's bound. Energy is per op, from
        its own actions."""
        chip = Chip.of(device)
        check_wired(ops, chip, placement)
        a = action_counts(ops, chip)
        hbm_rate = device.memory.bw_bytes_per_s
        times = resource_times(a, chip, hbm_rate)
        stacked = np.stack(list(times.values()))
        step = stacked.max(axis=0)
        bound = np.asarray(RESOURCES)[np.argmax(stacked, axis=0)]
        roofline = np.max(
            np.stack(
                [times["hn"], times["vex"], times["sram"], times["hbm"], times["link"] * chip.link_efficiency]
            ),
            axis=0,
        )
        count = a.count.reshape((-1,) + (1,) * (a.tokens.ndim - 1))
        share = count * (
            op_latency_s(a, chip)
            + a.link_bytes / chip.link_rate
            + a.vex_kv_vectors / chip.vex_rate
            + a.sram_bytes / chip.buffer_rate
        )
        total = share.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(total > 0, share / np.where(total > 0, total, 1.0), 0.0) / np.maximum(count, 1e-300)
        per_op = w * step  # per occurrence
        zero = np.zeros_like(per_op)
        term = lambda name: np.where(  # noqa: E731
            np.isin(bound, [r for r in RESOURCES if RESOURCE_BOUND.get(r, r) == name]), per_op, zero
        )
        e = Energies.of(device)
        return CostTable(
            op=ops.name,
            kind=ops.kind,
            count=ops.count,
            compute_s=term("compute"),
            memory_s=term("memory"),
            link_s=term("link"),
            overhead_s=term("overhead"),
            dynamic_energy_j=dynamic_energy_j(a, e),
            roofline_s=w * roofline,
            flops=ops.per_step("flops"),
            bytes_by_level={
                "sram": count * a.sram_bytes,
                "hbm": count * a.hbm_bytes,
                "link": count * a.link_bytes,
            },
            static_power_w=e.static_w,
            power_cap_w=device.tdp_w,
        )


def nre_usd(b, end: str = "high") -> dict[str, float]:
    """NRE of the system (Table 5, App. B note 3) at the ``low`` or ``high`` end, in $: the shared
    masks (the mask set less the metal-embedding layers), the metal-embedding masks of every chip,
    and design. A re-spin costs the metal-embedding masks again."""
    mask_set = b[f"mask_set_usd_M_{end}"] * 1e6
    me_share = b["me_mask_duv_units"] / b["mask_set_duv_units"]
    return {
        "shared_masks": mask_set * (1.0 - me_share),
        "me_masks": mask_set * me_share * b["n_chips"],
        "design": b[f"design_usd_M_{end}"] * 1e6,
    }


def amortized_price_usd(
    b, end: str = "high", systems: float | None = None, respins: float | None = None
) -> float:
    """Price of one system over its life with NRE: (initial NRE + re-spins x metal-embedding
    masks) / systems, plus the chips' recurring cost for the first build and each re-spin.
    ``systems`` and ``respins`` default to the block's ``amortized_systems`` and
    ``respins_per_lifetime``."""
    systems = b["amortized_systems"] if systems is None else systems
    respins = b["respins_per_lifetime"] if respins is None else respins
    nre = nre_usd(b, end)
    recurring = b[f"recurring_per_chip_usd_{end}"] * b["n_chips"]
    return (sum(nre.values()) + respins * nre["me_masks"]) / systems + (1.0 + respins) * recurring
