"""The base of the optimisers: each hyper-parameter declared once, stored once, checked at every step."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from .._checks import argument, check_flag, check_real, interval
from ._checks import check_distinct_tensors, check_sequence, check_tensor_list

NO_DEFAULT = inspect.Parameter.empty  # Python's own marker of a parameter without a default


def _subject(name: str, where: str | None, index: str = "") -> str:
    """``argument 'betas[0]'`` for a keyword argument (``where=None``), ``param_groups[1]['betas'][0]`` in a group."""
    return argument(f"{name}{index}") if where is None else f"{where}['{name}']{index}"


@dataclass(frozen=True)
class Option:
    """One hyper-parameter of an optimiser, declared once in the table ``options`` of its class.

    From the table come the signature of the class, its ``defaults``, the checks of the constructor,
    of every parameter group and of every step, and the *Parameters* section of its documentation.
    The kind of value follows the default: ``True`` or ``False`` for a flag, a pair of numbers when
    ``elements`` names the two entries (as the functional core calls them: ``betas`` is the pair
    ``beta1, beta2``), a real number otherwise.  A number must be finite and >= 0, and at most
    ``high`` when that is given (below it with ``high_open``).
    """

    name: str
    """The keyword argument, and its key in ``defaults`` and in every parameter group."""
    default: object
    """Its value when none is given; ``inspect.Parameter.empty`` makes the argument required."""
    meaning: str
    """What it is, in the book's notation (for the documentation)."""
    high: float | None = None
    """The largest allowed value, or ``None`` for no bound."""
    high_open: bool = False
    """Whether ``high`` itself is excluded."""
    elements: tuple[str, ...] = ()
    """The names of the two entries of a pair, and empty for a flag or a number."""

    def check(self, fn: str, value: object, where: str | None = None) -> object:
        """Raise a ``TypeError`` or ``ValueError`` unless ``value`` is allowed; return it (a pair as a tuple).

        ``where`` is ``None`` for a keyword argument of ``fn``, else the parameter group that holds
        the value (``"params[1]"``, ``"param_groups[0]"``): the message names it.
        """
        if isinstance(self.default, bool):
            check_flag(fn, _subject(self.name, where), value)
        elif self.elements:
            if not (isinstance(value, (tuple, list)) and len(value) == len(self.elements)):
                pair = ", ".join(self.elements)
                raise ValueError(f"{fn}: {_subject(self.name, where)} must be a pair ({pair}), got {value!r}")
            for i, entry in enumerate(value):
                self._check_number(fn, entry, _subject(self.name, where, f"[{i}]"))
            return tuple(value)
        else:
            self._check_number(fn, value, _subject(self.name, where))
        return value

    def allowed(self) -> str:
        """The allowed values in words, as the checks say them: ``">= 0"``, ``"in [0, 1)"``, ``"True or False"``."""
        if isinstance(self.default, bool):
            return "True or False"
        bounds = interval(0.0, self.high, high_open=self.high_open)
        return f"a pair, each entry {bounds}" if self.elements else bounds

    def _check_number(self, fn: str, value: object, subject: str) -> None:
        check_real(fn, subject, value, 0.0, self.high, high_open=self.high_open)


def check_core_options(fn: str, options: Sequence[Option], values: Mapping[str, object]) -> None:
    """Check the keyword-only hyper-parameters of a functional core against the table of its class.

    A name that no option has is an entry of a pair (``beta1`` of ``betas``), checked as one.
    """
    by_name = {option.name: option for option in options}
    by_entry = {entry: option for option in options for entry in option.elements}
    for name, value in values.items():
        if name in by_name:
            by_name[name].check(fn, value)
        else:
            by_entry[name]._check_number(fn, value, argument(name))


def _signature(options: Sequence[Option]) -> inspect.Signature:
    """``(params, lr=..., *, option=default, ...)``: the first option may be given by position, the rest by keyword."""
    kinds = [inspect.Parameter.POSITIONAL_OR_KEYWORD] + [inspect.Parameter.KEYWORD_ONLY] * (len(options) - 1)
    return inspect.Signature(
        [inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(option.name, kind, default=option.default) for option, kind in zip(options, kinds)]
    )


def _parameters_section(options: Sequence[Option]) -> str:
    """The numpy-style *Parameters* section of a class's documentation, written from its table."""
    lines = [
        "Parameters",
        "----------",
        "params",
        "    The tensors to optimise, a sequence (a list, a tuple, a :class:`~bplib.params.Params`), or a list of",
        "    parameter groups: dicts with the key ``'params'`` (a sequence of tensors) and any of the options",
        "    below, which override the defaults for the tensors of that group.",
    ]
    for option in options:
        kind = "bool" if isinstance(option.default, bool) else "tuple" if option.elements else "float"
        default = "Required" if option.default is NO_DEFAULT else f"Default ``{option.default!r}``"
        lines += [f"{option.name} : {kind}", f"    {option.meaning} ({option.allowed()}).  {default}."]
    return "\n".join(lines)


class Optimizer:
    """The base of the optimisers: torch.optim's layout of hyper-parameters and state, with handed-in gradients.

    As in :mod:`torch.optim`, the hyper-parameters are stored once: ``opt.defaults`` holds the
    constructor's values, and ``opt.param_groups`` is a list of dicts, each with the key
    ``"params"`` (its tensors) and every hyper-parameter, read at every step, so that
    ``group["lr"] = ...`` between steps changes the learning rate (this is what the schedules of
    :mod:`bplib.optim.lr_scheduler` do).  ``opt.state[p]`` is the state of parameter ``p`` (keyed by
    the tensor, as torch does), a dict with torch's names: ``"step"``, the number of steps ``p`` has
    taken (an ``int``; torch keeps a 0-d tensor), and the rule's running averages, created at the
    first step (``"momentum_buffer"``, ``"sum"``, ``"square_avg"``, ``"grad_avg"``, ``"exp_avg"``,
    ``"exp_avg_sq"``, ``"max_exp_avg_sq"``).  An average that an option needs is created when it is
    first needed, starting at zero, also when the option is switched on between steps.

    A rule subclasses it with a table ``options`` of :class:`Option`, first ``lr``, from which come
    its signature (``params``, ``lr``, then the other options by keyword only), ``defaults``, the
    checks and its documentation; ``_state_starts(group)``, the state tensors a parameter of the
    group needs with their initial value; and ``_update(params, grads, states, options)``, which
    applies the rule's functional core to one group.  ``_check_combination`` checks constraints
    between options (SGD's Nesterov momentum needs momentum and no dampening).

    The constructor checks every hyper-parameter and every parameter group; a group may set any
    option and nothing else.  The tensors must be floating, and no tensor may come twice.
    """

    options: tuple[Option, ...] = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.__signature__ = _signature(cls.options)
        cls.__doc__ = f"{inspect.cleandoc(cls.__doc__ or '')}\n\n{_parameters_section(cls.options)}"

    def __init__(self, params, *args, **kwargs) -> None:  # the signature of each rule is made from its table
        fn = type(self).__name__
        if not self.options:
            raise TypeError(
                f"{fn}: the base class has no update rule; use SGD, Adagrad, RMSprop, Adam or AdamW, or subclass it"
            )
        try:
            bound = self.__signature__.bind(params, *args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{fn}: {error}; the signature is {fn}{self.__signature__}") from None
        bound.apply_defaults()
        values = dict(bound.arguments)
        del values["params"]
        self.defaults: dict[str, object] = self._checked(fn, values, where=None)
        self._check_combination(fn, self.defaults, None)
        self.param_groups: list[dict[str, object]] = self._groups(fn, params)
        self.state: dict[torch.Tensor, dict[str, object]] = {p: {} for p in self._parameters()}

    def __setattr__(self, name: str, value: object) -> None:
        # opt.lr = ... would set an attribute that no step reads: the hyper-parameters live in the groups
        if name in {option.name for option in self.options}:
            raise AttributeError(
                f"{type(self).__name__}: '{name}' is a hyper-parameter of every parameter group; "
                f"set group[{name!r}] = ... for each group in opt.param_groups "
                f"(a schedule of bplib.optim.lr_scheduler does it for lr)"
            )
        super().__setattr__(name, value)

    def step(self, grads: Sequence[torch.Tensor]) -> None:
        """Update every parameter in place, given one gradient per parameter.

        ``grads[k]`` is the gradient of the loss with respect to the ``k``-th parameter of
        ``[p for group in opt.param_groups for p in group["params"]]``: with a plain list of
        tensors, ``params[k]``.  It may be any sequence (a list, a tuple, a :class:`~bplib.params.Params`)
        of tensors, each of the shape, dtype and device of its parameter.  The gradients and the
        hyper-parameters of every group are checked before anything is updated; the gradients
        are not modified.
        """
        fn = f"{type(self).__name__}.step"
        check_tensor_list(fn, "grads", grads, self._parameters(), self._parameter_names())
        for i, group in enumerate(self.param_groups):
            options = self._checked(fn, self._options_of(group), where=f"param_groups[{i}]")
            self._check_combination(fn, options, f"param_groups[{i}]")
        grads = list(grads)
        for group in self.param_groups:
            params = group["params"]
            group_grads, grads = grads[: len(params)], grads[len(params) :]
            states = [self._advance_state(p, group) for p in params]
            self._update(params, group_grads, states, self._options_of(group))

    # ------------------------------------------------------------------ what a rule provides

    def _check_combination(self, fn: str, options: Mapping[str, object], where: str | None) -> None:
        """Check constraints between options (``where`` as for :meth:`Option.check`); none unless a rule has some."""

    def _state_starts(self, group: Mapping[str, object]) -> dict[str, float]:
        """The state tensors a parameter of ``group`` needs besides ``"step"``, with their initial value."""
        return {}

    def _update(
        self,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, object]],
        options: dict[str, object],
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement _update")

    # ------------------------------------------------------------------ the machinery

    def _checked(self, fn: str, values: Mapping[str, object], where: str | None) -> dict[str, object]:
        by_name = {option.name: option for option in self.options}
        return {name: by_name[name].check(fn, value, where) for name, value in values.items()}

    def _options_of(self, group: Mapping[str, object]) -> dict[str, object]:
        return {option.name: group[option.name] for option in self.options}

    def _groups(self, fn: str, params: object) -> list[dict[str, object]]:
        """The parameter groups, checked: one from a sequence of tensors, or one per dict."""
        check_sequence(fn, "params", params, "tensors or of parameter groups (dicts)")
        if len(params) == 0:
            raise ValueError(
                f"{fn}: argument 'params' must hold at least one tensor, got an empty {type(params).__name__}"
            )
        if not isinstance(params[0], dict):
            check_distinct_tensors(fn, params, [f"params[{j}]" for j in range(len(params))])
            return [{"params": list(params), **self.defaults}]
        groups = [self._group(fn, i, group) for i, group in enumerate(params)]
        names = [f"params[{i}]['params'][{j}]" for i, group in enumerate(groups) for j in range(len(group["params"]))]
        check_distinct_tensors(fn, [p for group in groups for p in group["params"]], names)
        return groups

    def _group(self, fn: str, i: int, group: object) -> dict[str, object]:
        where = f"params[{i}]"
        if not isinstance(group, dict):
            raise TypeError(
                f"{fn}: {where} must be a parameter group (a dict with the key 'params'), like params[0], "
                f"got {type(group).__name__}"
            )
        if "params" not in group:
            raise ValueError(
                f"{fn}: {where} has no key 'params'; a parameter group is {{'params': [tensors], option: value, ...}}"
            )
        names = [option.name for option in self.options]
        unknown = [key for key in group if key != "params" and key not in names]
        if unknown:
            raise ValueError(
                f"{fn}: {where} has the key {unknown[0]!r}, which is no option of {fn}; "
                f"its options are {', '.join(names)}"
            )
        tensors = group["params"]
        check_sequence(fn, f"{where}['params']", tensors, "tensors")
        if len(tensors) == 0:
            raise ValueError(
                f"{fn}: argument '{where}['params']' must hold at least one tensor, "
                f"got an empty {type(tensors).__name__}"
            )
        overrides = self._checked(fn, {key: value for key, value in group.items() if key != "params"}, where)
        checked = {"params": list(tensors), **self.defaults, **overrides}
        self._check_combination(fn, checked, where)
        return checked

    def _parameters(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def _parameter_names(self) -> list[str]:
        """How the messages name each parameter: ``params[k]`` with one group, ``param_groups[i]['params'][j]`` else."""
        if len(self.param_groups) == 1:
            return [f"params[{j}]" for j in range(len(self.param_groups[0]["params"]))]
        return [
            f"param_groups[{i}]['params'][{j}]"
            for i, group in enumerate(self.param_groups)
            for j in range(len(group["params"]))
        ]

    def _advance_state(self, p: torch.Tensor, group: Mapping[str, object]) -> dict[str, object]:
        """Count this step in ``state[p]["step"]`` and create the state tensors the group's options need."""
        state = self.state.setdefault(p, {})
        state["step"] = state.get("step", 0) + 1
        for name, start in self._state_starts(group).items():
            if name not in state:
                state[name] = torch.full_like(p, start)
        return state
