import copy
import unittest

from metal.end_model.em_defaults import em_default_config
from metal.multitask import MTEndModel
from metal.multitask.mt_em_defaults import mt_em_default_config


class MtEmDefaultsTestCase(unittest.TestCase):
    def test_additions(self):
        self.assertEqual(
            mt_em_default_config,
            {
                "task_head_layers": "top",
                "pass_predictions": False,
                "train_config": {
                    "validation_scoring_kwargs": {"validation_task": None}
                },
            },
        )

    def test_merged_tree_is_end_model_tree_plus_additions(self):
        em = MTEndModel([2, 4], K=[2, 2], verbose=False)
        expected = copy.deepcopy(em_default_config)
        expected["layer_out_dims"] = [2, 4]
        expected["train_config"]["validation_scoring_kwargs"] = {
            "validation_task": None
        }
        expected["task_head_layers"] = "top"
        expected["pass_predictions"] = False
        config = dict(em.config)
        config["verbose"] = True
        self.assertEqual(config, expected)
        # The additions come after train_config, in this order.
        self.assertEqual(
            list(em.config)[-3:],
            ["train_config", "task_head_layers", "pass_predictions"],
        )
        # The module defaults are left untouched.
        self.assertEqual(
            em_default_config["train_config"]["validation_scoring_kwargs"], {}
        )
        self.assertNotIn("task_head_layers", em_default_config)


if __name__ == "__main__":
    unittest.main()
