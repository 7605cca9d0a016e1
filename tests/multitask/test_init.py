import subprocess
import sys
import unittest

import metal.multitask as multitask


class MultitaskPackageTestCase(unittest.TestCase):
    def test_exports(self):
        self.assertEqual(
            sorted(multitask.__all__),
            sorted(
                [
                    "MultiXYDataset",
                    "MultiYDataset",
                    "TaskGraph",
                    "TaskHierarchy",
                    "MTClassifier",
                    "MTEndModel",
                    "MTLabelModel",
                ]
            ),
        )
        for name in multitask.__all__:
            self.assertTrue(hasattr(multitask, name), name)

    def test_single_task_code_never_imports_multitask(self):
        code = (
            "import sys, numpy as np\n"
            "import metal\n"
            "from metal import EndModel, LabelModel, MajorityLabelVoter\n"
            "import metal.analysis, metal.metrics, metal.utils, metal.engine\n"
            "import metal.logging, metal.label_model.class_balance\n"
            "from metal.synthetic.generate import singletask_synthetic\n"
            "np.random.seed(0)\n"
            "D, L, X, Y, deps = singletask_synthetic(200, 4, 2)\n"
            "LabelModel(k=2, verbose=False).train_model(L, n_epochs=5)\n"
            "EndModel([X.shape[1], 2], verbose=False)\n"
            "prefix = 'metal.multitask'\n"
            "print(sorted(m for m in sys.modules if m.startswith(prefix)))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        self.assertEqual(out.stdout.strip().splitlines()[-1], "[]")


if __name__ == "__main__":
    unittest.main()
