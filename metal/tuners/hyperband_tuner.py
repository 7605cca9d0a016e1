"""Hyperband: successive halving over brackets that trade the number of
configurations against the epochs each one is trained for.

A **schedule** is a list of brackets; a **bracket** is a list of bands
``(n_i, r_i)``: train ``n_i`` configurations for ``r_i`` epochs each and keep
the best ``n_{i+1}`` for the next band. The first bracket starts with the most
configurations and the fewest epochs; the last trains a few configurations for
the full ``R`` epochs. The tuner picks the largest schedule whose total cost
(sum of ``n_i * r_i``) fits the epoch budget.

Differences from MeTaL v0.5: the schedule is printed when a verbose search
starts rather than at construction; ``max_search`` caps the configurations
drawn per bracket and ``shuffle`` is honoured; a bracket that starts with fewer
configurations than scheduled keeps proportionally fewer survivors; trials are
numbered ``"<bracket>_<band>_<i>"`` (unique across brackets); configurations are
not modified (each trial gets a copy with its ``n_epochs``); a report is
written like the random search's.
"""

import math
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from metal._checks import check_int, is_number
from metal.tuners.tuner import ModelTuner, _SearchInputs

Schedule = List[List[Tuple[int, int]]]


class HyperbandTuner(ModelTuner):
    """Hyperband search (Li et al., 2017) over a search space.

    Args:
        model_class: the model class to tune; its config must have ``n_epochs``
            (set by the schedule for every trial).
        hyperband_epochs_budget: the total number of training epochs the
            schedule may spend (summed over all trials).
        hyperband_proportion_discard: ``eta``, the factor by which each band
            reduces the number of configurations (and multiplies the epochs).
        log_dir, run_dir, run_name, log_writer_class, seed: as ``ModelTuner``.
        **tuner_args: other ``ModelTuner`` arguments (``module_classes``,
            ``validation_metric``).

    ``hyperband_schedule`` holds the schedule; it is printed when a verbose
    search starts (and by ``pretty_print_schedule``).
    """

    def __init__(
        self,
        model_class,
        hyperband_epochs_budget: int = 200,
        hyperband_proportion_discard: int = 3,
        log_dir: Optional[str] = None,
        run_dir: Optional[str] = None,
        run_name: Optional[str] = None,
        log_writer_class=None,
        seed: Optional[int] = None,
        **tuner_args,
    ):
        super().__init__(
            model_class,
            log_dir=log_dir,
            run_dir=run_dir,
            run_name=run_name,
            log_writer_class=log_writer_class,
            seed=seed,
            **tuner_args,
        )
        check_int(
            hyperband_epochs_budget,
            "hyperband_epochs_budget",
            minimum=2,
            expected="an integer >= 2 (total training epochs)",
        )
        if (
            not is_number(hyperband_proportion_discard)
            or not hyperband_proportion_discard > 1
        ):
            raise ValueError(
                "hyperband_proportion_discard (eta) must be a number > 1; found "
                f"{hyperband_proportion_discard!r}."
            )
        # Kept for compatibility with MeTaL (the draws use the Python RNG).
        self.rand_state = np.random.RandomState(self.seed % 2**32)
        self.hyperband_epochs_budget = int(hyperband_epochs_budget)
        self.eta = hyperband_proportion_discard
        self.hyperband_schedule = self.get_largest_schedule_within_budget(
            self.hyperband_epochs_budget, self.eta
        )

    # -------------------------------------------------------------- schedules
    @staticmethod
    def generate_hyperband_schedule(R: int, eta) -> Schedule:
        """The Hyperband schedule for at most ``R`` epochs per configuration.

        With ``s_max = floor(log_eta(R))``, bracket ``s`` (for ``s = s_max`` down
        to 0) starts ``n = ceil(floor((s_max + 1) / (s + 1)) * eta**s)``
        configurations at ``r = R / eta**s`` epochs; band ``i`` keeps
        ``floor(n / eta**i)`` of them for ``int(r * eta**i)`` epochs.
        """
        s_max = int(math.floor(math.log(R, eta)))
        schedule = []
        for s in range(s_max + 1):
            n = math.ceil(int((s_max + 1) / (s + 1)) * eta**s)
            r = R * eta ** (-s)
            bracket = [
                (int(math.floor(n * eta ** (-i))), int(r * eta**i))
                for i in range(s + 1)
            ]
            schedule.insert(0, bracket)
        return schedule

    @staticmethod
    def compute_schedule_cost(schedule: Schedule) -> int:
        """Total epochs of a schedule: the sum of ``n_i * r_i`` over all bands."""
        return sum(n * r for bracket in schedule for n, r in bracket)

    @staticmethod
    def get_largest_schedule_within_budget(budget: int, proportion_discard) -> Schedule:
        """The costliest schedule (over ``R = 1 .. budget - 1``) whose cost is at
        most ``budget``; ties go to the smallest ``R``."""
        best, best_cost = None, -1
        for R in range(1, budget):
            schedule = HyperbandTuner.generate_hyperband_schedule(R, proportion_discard)
            cost = HyperbandTuner.compute_schedule_cost(schedule)
            if best_cost < cost <= budget:
                best, best_cost = schedule, cost
        if best is None:
            raise ValueError(
                f"No Hyperband schedule fits in a budget of {budget} epochs; "
                "increase hyperband_epochs_budget."
            )
        return best

    @staticmethod
    def pretty_print_schedule(
        hyperband_schedule: Schedule, describe_hyperband: bool = True
    ) -> None:
        """Print a schedule, one line per bracket: ``Bracket i: (n, r) ...``."""
        print("=" * 60)
        print("Hyperband schedule")
        if describe_hyperband:
            print(
                "Each bracket is a run of successive halving. In a band (n, r),\n"
                "n configurations are trained for r epochs each; the best of them\n"
                "go on to the next band, which trains fewer configurations for\n"
                "more epochs. Every trial trains its model from scratch."
            )
        print("-" * 60)
        for i, bracket in enumerate(hyperband_schedule):
            bands = " ".join(f"({n}, {r})" for n, r in bracket)
            print(f"Bracket {i}: {bands}")
        print("=" * 60)

    # ----------------------------------------------------------------- search
    def search(
        self,
        search_space: Dict[str, Any],
        valid_data: Any,
        init_args: Sequence = [],
        train_args: Sequence = [],
        init_kwargs: Dict[str, Any] = {},
        train_kwargs: Dict[str, Any] = {},
        module_args: Dict[str, Sequence] = {},
        module_kwargs: Dict[str, Dict[str, Any]] = {},
        max_search: Optional[int] = None,
        shuffle: bool = True,
        verbose: bool = True,
        seed: Optional[int] = None,
        **score_kwargs,
    ) -> Any:
        """Run every bracket of ``hyperband_schedule``; return the best model.

        For each bracket, ``n_0`` configurations are drawn (at most
        ``max_search`` of them when it is given; ``shuffle`` as in
        ``config_generator``); each band trains the survivors for its number
        of epochs (``n_epochs`` is set per trial, overriding any other value)
        and keeps the best ``n_{i+1}``, scaled down in proportion when the
        bracket started with fewer configurations than scheduled. Trial ids are
        ``"<bracket>_<band>_<i>"``. The arguments are otherwise those of
        ``RandomSearchTuner.search``; the saved best model is always removed
        once loaded.
        """
        inputs = _SearchInputs.from_arguments(locals())
        self._clear_state(seed)
        self.config_generator(search_space, max_search, self.rng, shuffle)
        if "n_epochs" in search_space:
            warnings.warn(
                "HyperbandTuner sets n_epochs from its schedule; the search "
                "space's n_epochs is ignored.",
                stacklevel=2,
            )
        self.search_space = dict(search_space)
        self._prepare_search(search_space, inputs, required_keys=["n_epochs"])
        self._n_planned = None
        if verbose:
            self.pretty_print_schedule(self.hyperband_schedule)
        try:
            for b, bracket in enumerate(self.hyperband_schedule):
                n_start = bracket[0][0]
                if max_search:
                    n_start = min(n_start, max_search)
                configs = self.config_generator(
                    search_space, n_start, self.rng, shuffle
                )
                self._run_bracket(b, bracket, list(configs), inputs, verbose)
            return self._finish_search("Hyperband search finished", verbose, True)
        finally:
            self._remove_tmpdir()

    def _run_bracket(
        self,
        b: int,
        bracket: List[Tuple[int, int]],
        configs: List[Dict[str, Any]],
        inputs: _SearchInputs,
        verbose: bool,
    ) -> None:
        """Successive halving: train every survivor for each band's epochs and
        keep the best for the next band (trial ids ``"<b>_<band>_<i>"``)."""
        survivors = configs
        for band, (_, r_i) in enumerate(bracket):
            if verbose:
                print(
                    f"Bracket {b}, band {band}: {len(survivors)} "
                    f"configuration(s) x {r_i} epoch(s)"
                )
            scored = []
            for i, config in enumerate(survivors):
                trial_config = {**config, "n_epochs": r_i}
                score, _ = self._run_trial(
                    f"{b}_{band}_{i}", trial_config, inputs, verbose
                )
                self.run_stats[-1].update({"bracket": b, "band": band})
                scored.append((score, config))
                self._save_report()
            if band + 1 < len(bracket):
                n_keep = _n_to_keep(bracket[band + 1][0], len(configs), bracket[0][0])
                survivors = [c for _, c in _rank(scored)[:n_keep]]

    def _search_params(self, config: Dict[str, Any]) -> Dict[str, Any]:
        """The searched entries of ``config`` plus the trial's ``n_epochs``."""
        params = super()._search_params(config)
        if "n_epochs" in config:
            params["n_epochs"] = config["n_epochs"]
        return params


def _n_to_keep(n_next: int, n_drawn: int, n_scheduled: int) -> int:
    """Survivors for the next band: the schedule's ``n_next`` for a full bracket,
    proportionally fewer (at least one) when fewer configurations were drawn."""
    if n_drawn >= n_scheduled:
        return n_next
    return max(1, min(n_next, math.ceil(n_next * n_drawn / n_scheduled)))


def _rank(scored):
    """Sort ``(score, config)`` pairs best first (stable; NaN scores last)."""
    return sorted(scored, key=lambda pair: (math.isnan(pair[0]), -_num(pair[0])))


def _num(score: float) -> float:
    return 0.0 if math.isnan(score) else score
