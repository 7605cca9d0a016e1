"""Logistic (softmax) regression as an ``EndModel``."""

from typing import Any

from metal.end_model.end_model import EndModel


class LogisticRegression(EndModel):
    """Softmax regression: identity input, then ``Linear(input_dim, output_dim)``.

    Args:
        input_dim: number of input features.
        output_dim: number of classes ``k`` (labels ``1..k``).
        **kwargs: config entries as for ``EndModel``. ``input_batchnorm`` and
            ``input_dropout`` are forced to ``False``/``0.0`` (the identity input
            layer has none).
    """

    def __init__(self, input_dim: int, output_dim: int = 2, **kwargs: Any) -> None:
        user_kwargs = dict(kwargs)
        kwargs.update({"input_batchnorm": False, "input_dropout": 0.0})
        super().__init__([input_dim, output_dim], **kwargs)
        self._record_init_kwargs(
            input_dim=input_dim, output_dim=output_dim, **user_kwargs
        )
