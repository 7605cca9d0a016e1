"""Random search: train and score configurations drawn from a search space."""

from typing import Any, Dict, Optional, Sequence

from metal.tuners.tuner import ModelTuner, _SearchInputs


class RandomSearchTuner(ModelTuner):
    """Tries configurations drawn by ``ModelTuner.config_generator`` one after
    the other and returns the model that scores best on the validation data.

    The constructor is ``ModelTuner``'s.

    Example::

        tuner = RandomSearchTuner(EndModel, seed=123)
        model = tuner.search(
            {"lr": {"range": [1e-4, 1e-1], "scale": "log"},
             "layer_out_dims": [[2, 8, 2], [2, 32, 2]]},
            valid_data=(X_dev, Y_dev),
            train_args=[(X_train, Y_train)],
            init_kwargs={"seed": 1},
            train_kwargs={"n_epochs": 5},
            max_search=10,
        )
        tuner.run_stats_df()
    """

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
        clean_up: bool = True,
        seed: Optional[int] = None,
        **score_kwargs,
    ) -> Any:
        """Train and score configurations; return the best model.

        Args:
            search_space: ``{key: [candidates] | {"range": [lo, hi], "scale":
                "linear" | "log"} | fixed value}`` (see ``metal.tuners.tuner``).
            valid_data: the labelled data each trained model is scored on with
                ``validation_metric`` (e.g. ``(X_dev, Y_dev)``; ``(L_dev, Y_dev)``
                for a label model).
            init_args, init_kwargs: the model's constructor arguments.
            train_args, train_kwargs: ``train_model``'s arguments (e.g.
                ``train_args=[(X_train, Y_train)]``, or ``[L_train]`` for a label
                model); the tuner adds ``valid_data`` and ``log_writer``.
            module_args, module_kwargs: ``{name: args}`` / ``{name: kwargs}`` of
                the ``module_classes``.
            max_search: the number of configurations (see
                ``config_generator``); None or 0 = every discrete combination.
            shuffle: shuffle the discrete combinations.
            verbose: print a line per trial and a summary table. The models
                themselves are quiet unless ``verbose`` is in ``init_kwargs`` or
                ``train_kwargs``.
            clean_up: delete the saved best-model file once it is loaded.
            seed: re-seed the tuner's RNG first (default: continue it).
            **score_kwargs: passed to the model's ``score``.

        Returns:
            the best model (rebuilt from its saved file when the model supports
            that, otherwise the trained object itself).

        Raises:
            ValueError: for a malformed search space or unknown keys, before any
                training.
        """
        inputs = _SearchInputs.from_arguments(locals())
        self._clear_state(seed)
        configs = self.config_generator(search_space, max_search, self.rng, shuffle)
        self.search_space = dict(search_space)
        self._prepare_search(search_space, inputs)
        self._n_planned = self._n_configs(search_space, max_search)
        try:
            for i, config in enumerate(configs):
                self._run_trial(i, config, inputs, verbose)
                self._save_report()
            return self._finish_search("Random search finished", verbose, clean_up)
        finally:
            self._remove_tmpdir()
