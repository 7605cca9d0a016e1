import unittest

import torch
import torch.nn as nn

from metal.mmtl.modules import MetalModule, MetalModuleWrapper


class ModulesTest(unittest.TestCase):
    def test_wrapper_replaces_data_and_keeps_other_keys(self):
        wrapper = MetalModuleWrapper(nn.Linear(2, 3))
        X = {"data": torch.zeros(4, 2), "uids": ["a", "b", "c", "d"]}
        out = wrapper(X)
        self.assertEqual(out["data"].shape, (4, 3))
        self.assertIs(out["uids"], X["uids"])
        self.assertEqual(X["data"].shape, (4, 2))  # input dict untouched
        self.assertIsInstance(wrapper.module, nn.Linear)

    def test_metal_module_is_a_module(self):
        self.assertIsInstance(MetalModule(), nn.Module)


if __name__ == "__main__":
    unittest.main()
