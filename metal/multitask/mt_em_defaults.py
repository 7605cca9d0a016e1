"""The keys ``MTEndModel`` adds to ``em_default_config``.

The MTEndModel config is ``em_default_config`` merged with this tree (insert
mode): the end-model tree plus top-level ``task_head_layers`` and
``pass_predictions`` after ``train_config``, and
``train_config.validation_scoring_kwargs = {"validation_task": None}``. In the
merged tree ``layer_out_dims`` lists ``[d_0, d_1, ..., d_L]`` (no trailing
cardinality: head sizes come from the task graph); ``skip_head`` and
``loss_weights`` are present but unused.
"""

mt_em_default_config = {
    # "top" (every head on the last layer) or a list giving, per task, the index
    # of the layer whose output feeds that task's head (0 = input layer).
    "task_head_layers": "top",
    # Feed each task's parents' head outputs (logits) to its head, concatenated
    # with the layer output; parents must attach to strictly lower layers.
    "pass_predictions": False,
    "train_config": {
        # Accepted for compatibility; logged validation metrics are task means.
        "validation_scoring_kwargs": {"validation_task": None},
    },
}
