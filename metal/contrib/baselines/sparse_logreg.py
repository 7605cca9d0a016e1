"""Logistic regression over sparse binary features given as feature-id lists."""

from metal.contrib.modules.sparse_linear_module import SparseLinearModule
from metal.end_model import EndModel
from metal.utils import recursive_merge_dicts

# Optimizers whose torch implementation accepts the sparse gradients of
# ``SparseLinearModule.W`` together with the dense gradient of its bias.
SPARSE_OPTIMIZERS = ("sgd",)


class SparseLogisticRegression(EndModel):
    """Softmax regression whose input rows list the ids of their active features.

    The network is the identity input layer followed by a
    ``SparseLinearModule(embed_size=output_dim, vocab_size=input_dim,
    padding_idx=padding_idx)`` head (``em.network[-1]``).

    Inputs: ``X`` is an integer tensor/array ``[n, max_features]`` of feature
    ids in ``0..input_dim-1``, right-padded with ``padding_idx``; labels are
    ``1..output_dim`` (or ``[n, output_dim]`` probabilities), as for every
    ``EndModel``.

    Train with ``optimizer="sgd"`` and ``l2=0`` (the feature weights get sparse
    gradients, which torch's other optimizers and weight decay reject).

    Args:
        input_dim: number of feature ids (padding id included).
        output_dim: number of classes ``k``.
        padding_idx: the id used for padding (its weights stay 0).
        **kwargs: config entries as for ``EndModel``; ``input_batchnorm`` and
            ``input_dropout`` are forced off.
    """

    def __init__(
        self, input_dim: int, output_dim: int = 2, padding_idx: int = 0, **kwargs
    ):
        user_kwargs = dict(kwargs)
        kwargs = recursive_merge_dicts(
            kwargs,
            {"input_batchnorm": False, "input_dropout": 0.0},
            misses="insert",
            verbose=False,
        )
        head = SparseLinearModule(
            embed_size=output_dim, vocab_size=input_dim, padding_idx=padding_idx
        )
        super().__init__([input_dim, output_dim], head_module=head, **kwargs)
        self._record_init_kwargs(
            input_dim=input_dim,
            output_dim=output_dim,
            padding_idx=padding_idx,
            **user_kwargs,
        )

    def train_model(self, train_data, valid_data=None, log_writer=None, **kwargs):
        """As ``EndModel.train_model``; raises ``ValueError`` up front when the
        optimizer or ``l2`` cannot handle sparse gradients."""
        merged = recursive_merge_dicts(
            self.config, kwargs, misses="ignore", verbose=False
        )
        _check_sparse_settings(merged, "train_model")
        return super().train_model(
            train_data, valid_data=valid_data, log_writer=log_writer, **kwargs
        )


def _check_sparse_settings(config: dict, where: str) -> None:
    tc = config["train_config"]
    optimizer = tc["optimizer_config"]["optimizer"]
    if optimizer not in SPARSE_OPTIMIZERS:
        raise ValueError(
            f"SparseLogisticRegression needs optimizer in {list(SPARSE_OPTIMIZERS)} "
            f"(its feature weights get sparse gradients); found optimizer="
            f"{optimizer!r} in {where}. Pass optimizer='sgd'."
        )
    if tc["l2"]:
        raise ValueError(
            "SparseLogisticRegression needs l2=0 (weight decay cannot be applied to "
            f"sparse gradients); found l2={tc['l2']!r} in {where}."
        )
