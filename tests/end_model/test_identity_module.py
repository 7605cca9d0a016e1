import unittest

import torch

from metal.end_model import IdentityModule


class IdentityModuleTestCase(unittest.TestCase):
    def test_forward_returns_input(self):
        x = torch.randn(3, 4)
        self.assertIs(IdentityModule()(x), x)

    def test_no_parameters_and_reset_is_noop(self):
        module = IdentityModule()
        self.assertEqual(list(module.parameters()), [])
        module.reset_parameters()
        self.assertEqual(module.state_dict(), {})


if __name__ == "__main__":
    unittest.main()
