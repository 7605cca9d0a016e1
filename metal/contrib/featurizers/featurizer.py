"""The interface every featurizer follows: ``fit``, ``transform``,
``fit_transform`` (as scikit-learn's transformers)."""

from typing import Any


class Featurizer(object):
    """Turns raw items into model inputs; subclasses implement ``fit`` and
    ``transform``."""

    def fit(self, input: Any) -> None:
        """Learn whatever the featurizer needs (e.g. a vocabulary) from ``input``."""
        raise NotImplementedError

    def transform(self, input: Any) -> Any:
        """Featurize ``input`` with what ``fit`` learned."""
        raise NotImplementedError

    def fit_transform(self, input: Any, **fit_kwargs) -> Any:
        """``fit(input, **fit_kwargs)`` then ``transform(input)``."""
        self.fit(input, **fit_kwargs)
        return self.transform(input)
