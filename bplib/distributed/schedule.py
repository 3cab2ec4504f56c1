"""Pipeline schedules as data: each stage's order of tasks, a simulator that times them, and the counts.

With the network cut into :math:`p` stages and the batch into :math:`M` micro-batches, stage
:math:`s` runs the forward pass ``("F", j)`` and the backward pass ``("B", j)`` of every micro-batch
:math:`j`.  A task waits for its inputs: ``("F", j)`` on stage :math:`s` for ``("F", j)`` on
:math:`s - 1`; ``("B", j)`` for ``("F", j)`` on its own stage and ``("B", j)`` on :math:`s + 1`.
An *order* lists each stage's tasks in the sequence it runs them:

* :func:`gpipe_order` (GPipe: Y. Huang et al. (2019), "GPipe: Efficient training of giant neural networks
  using pipeline parallelism", NeurIPS 32): every forward, then every backward;
* :func:`one_f_one_b_order` (one forward, one backward with a flush: D. Narayanan et al. (2021),
  "Memory-efficient pipeline-parallel DNN training", ICML): after a warm-up of
  :math:`p - s - 1` forwards, stage :math:`s` alternates, so it holds at most :math:`p - s` micro-batches'
  activations at a time instead of :math:`M`.

:func:`simulate_schedule` starts every task as early as its stage and its inputs allow, with integer
durations, and returns the event log; :func:`slot_table` lays the log out as a grid of time slots,
:func:`bubble_fraction` counts its idle slots, and :func:`peak_in_flight` the activations a stage
holds.  For GPipe with equal durations the idle fraction is :math:`(p - 1)/(M + p - 1)`, which the
book derives and checks against these counts.

Not done here: communication time (messages arrive at once), interleaved stages, real clocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .._checks import argument, check_integer

Order = list[list[tuple[str, int]]]
"""One list per stage of ``(kind, micro_batch)`` tasks, ``kind`` ``"F"`` or ``"B"``, in the order the stage runs them."""


@dataclass(frozen=True)
class Event:
    """One task of the event log: stage :math:`s` ran ``kind`` (``"F"`` or ``"B"``) of micro-batch :math:`j` in the time slots ``[start, end)``."""

    stage: int
    """The stage :math:`s`, from 0."""
    kind: str
    """``"F"`` (forward) or ``"B"`` (backward)."""
    micro_batch: int
    """The micro-batch :math:`j`, from 0."""
    start: int
    """First time slot."""
    end: int
    """One past the last time slot."""


def _check_sizes(fn: str, stages: object, micro_batches: object) -> None:
    for name, value in (("stages", stages), ("micro_batches", micro_batches)):
        check_integer(fn, argument(name), value, 1)


def gpipe_order(stages: int, micro_batches: int) -> Order:
    """GPipe's order: on every stage the forwards of micro-batches :math:`0, \\dots, M-1`, then the backwards from :math:`M-1` down."""
    _check_sizes("gpipe_order", stages, micro_batches)
    forwards = [("F", j) for j in range(micro_batches)]
    backwards = [("B", j) for j in reversed(range(micro_batches))]
    return [forwards + backwards for _ in range(stages)]


def one_f_one_b_order(stages: int, micro_batches: int) -> Order:
    """The one-forward-one-backward order: :math:`w_s = \\min(p - s - 1, M)` forwards, then F and B alternating, then the last backwards."""
    _check_sizes("one_f_one_b_order", stages, micro_batches)
    orders = []
    for s in range(stages):
        warm_up = min(stages - s - 1, micro_batches)
        order = [("F", j) for j in range(warm_up)]
        for i in range(micro_batches - warm_up):
            order += [("F", warm_up + i), ("B", i)]
        order += [("B", j) for j in range(micro_batches - warm_up, micro_batches)]
        orders.append(order)
    return orders


def _dependencies(stage: int, kind: str, j: int, stages: int) -> list[tuple[int, str, int]]:
    if kind == "F":
        return [(stage - 1, "F", j)] if stage > 0 else []
    return [(stage, "F", j)] + ([(stage + 1, "B", j)] if stage < stages - 1 else [])


def _tasks(order: list | tuple) -> list[tuple] | None:
    """The tasks of one stage's order as sorted tuples; ``None`` when an entry is not a task."""
    try:
        return sorted(map(tuple, order))
    except TypeError:  # an entry that is no sequence, or kinds and indices that do not compare
        return None


def _check_order(fn: str, orders: object) -> int:
    """Check that ``orders`` lists, for every stage, each of ``("F", j)`` and ``("B", j)`` exactly once; return :math:`M`."""
    if not isinstance(orders, (list, tuple)) or len(orders) == 0:
        raise ValueError(f"{fn}: argument 'orders' must be a non-empty list with one order per stage, got {orders!r:.80}")
    first = orders[0] if isinstance(orders[0], (list, tuple)) else []
    micro_batches = len(first) // 2
    expected = sorted([("F", j) for j in range(micro_batches)] + [("B", j) for j in range(micro_batches)])
    for s, order in enumerate(orders):
        if not isinstance(order, (list, tuple)) or _tasks(order) != expected or micro_batches == 0:
            raise ValueError(
                f"{fn}: orders[{s}] must hold ('F', j) and ('B', j) once each for j = 0, ..., M - 1 with the same "
                f"M >= 1 on every stage, got {order!r:.120}"
            )
    return micro_batches


def simulate_schedule(orders: Order, *, forward_time: int = 1, backward_time: int = 1) -> list[Event]:
    """Run each stage's tasks in its order, each as early as its stage is free and its inputs are ready.

    Durations are whole time slots (``forward_time`` for a forward, ``backward_time`` for a
    backward); messages between stages take no time.  Returns the event log sorted by start time,
    then stage.  A ``ValueError`` if the orders wait on each other forever.
    """
    fn = "simulate_schedule"
    micro_batches = _check_order(fn, orders)
    for name, value in (("forward_time", forward_time), ("backward_time", backward_time)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{fn}: argument '{name}' must be an integer >= 1 (time slots), got {value!r}")
    stages = len(orders)
    end: dict[tuple[int, str, int], int] = {}
    position, free = [0] * stages, [0] * stages
    events = []
    progress = True
    while progress:
        progress = False
        for s in range(stages):
            while position[s] < 2 * micro_batches:
                kind, j = orders[s][position[s]]
                needs = _dependencies(s, kind, j, stages)
                if any(d not in end for d in needs):
                    break  # this stage waits; another stage moves first
                start = max([free[s]] + [end[d] for d in needs])
                finish = start + (forward_time if kind == "F" else backward_time)
                end[(s, kind, j)] = free[s] = finish
                events.append(Event(s, kind, j, start, finish))
                position[s] += 1
                progress = True
    stuck = [(s, orders[s][position[s]]) for s in range(stages) if position[s] < 2 * micro_batches]
    if stuck:
        raise ValueError(f"{fn}: the orders wait on each other forever; stuck (stage, next task): {stuck}")
    return sorted(events, key=lambda e: (e.start, e.stage))


def _check_events(fn: str, events: object) -> list[Event]:
    if not isinstance(events, (list, tuple)) or not events or not all(isinstance(e, Event) for e in events):
        raise ValueError(f"{fn}: argument 'events' must be a non-empty list of Event (from simulate_schedule), got {events!r:.80}")
    return list(events)


def slot_table(events: list[Event]) -> list[list[tuple[str, int] | None]]:
    """The event log as a grid: ``table[s][t]`` is the task stage :math:`s` runs in slot :math:`t`, or ``None`` (idle)."""
    events = _check_events("slot_table", events)
    stages, makespan = max(e.stage for e in events) + 1, max(e.end for e in events)
    table: list[list[tuple[str, int] | None]] = [[None] * makespan for _ in range(stages)]
    for e in events:
        for t in range(e.start, e.end):
            if table[e.stage][t] is not None:
                raise ValueError(f"slot_table: stage {e.stage} runs two tasks in slot {t}")
            table[e.stage][t] = (e.kind, e.micro_batch)
    return table


def bubble_fraction(events: list[Event]):
    """The fraction of idle slots in :func:`slot_table`: idle slots over :math:`p` times the makespan.

    Exact: a ``fractions.Fraction`` of two slot counts.
    """
    table = slot_table(events)
    slots = [cell for row in table for cell in row]
    return Fraction(sum(cell is None for cell in slots), len(slots))


def peak_in_flight(events: list[Event], stage: int) -> int:
    """The most micro-batches whose activations stage ``stage`` holds at once: forwards begun, backward not yet finished."""
    events = _check_events("peak_in_flight", events)
    stages = max(e.stage for e in events) + 1
    if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage < stages:
        raise ValueError(f"peak_in_flight: argument 'stage' must be an integer in [0, {stages - 1}], got {stage!r}")
    held = peak = 0
    for e in sorted((e for e in events if e.stage == stage), key=lambda e: e.start):
        held += 1 if e.kind == "F" else -1  # a forward stores its caches, the backward frees them
        peak = max(peak, held)
    return peak
