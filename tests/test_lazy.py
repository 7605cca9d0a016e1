import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
import unittest
import uuid
from unittest import mock

import metal
from metal._lazy import lazy_exports

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(metal.__file__)))


class TestLazyExports(unittest.TestCase):
    def setUp(self):
        # A throwaway module, imported only through the lazy package.
        self.folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.folder)
        self.module = f"lazy_probe_{uuid.uuid4().hex}"
        with open(os.path.join(self.folder, self.module + ".py"), "w") as f:
            f.write("VALUE = 40 + 2\n\ndef helper():\n    return 'helped'\n")
        sys.path.insert(0, self.folder)
        self.addCleanup(sys.path.remove, self.folder)
        self.addCleanup(sys.modules.pop, self.module, None)
        importlib.invalidate_caches()

        self.package = types.ModuleType("fake_package")
        self.package.EAGER = "here already"
        getattr_, dir_ = lazy_exports(
            "fake_package",
            self.package.__dict__,
            {"VALUE": self.module, "helper": self.module},
        )
        self.package.__getattr__ = getattr_
        self.package.__dir__ = dir_

    def test_imported_only_on_first_access(self):
        self.assertNotIn(self.module, sys.modules)
        self.assertNotIn("VALUE", vars(self.package))
        dir(self.package)
        self.assertNotIn(self.module, sys.modules)
        self.assertEqual(self.package.VALUE, 42)
        self.assertIn(self.module, sys.modules)
        self.assertEqual(self.package.helper(), "helped")
        self.assertIs(self.package.helper, sys.modules[self.module].helper)

    def test_cached_in_namespace(self):
        real_import = importlib.import_module
        with mock.patch(
            "metal._lazy.importlib.import_module", side_effect=real_import
        ) as spy:
            self.assertEqual(self.package.VALUE, 42)
            self.assertEqual(vars(self.package)["VALUE"], 42)
            self.assertEqual(self.package.VALUE, 42)
            self.assertEqual(self.package.VALUE, 42)
            self.assertEqual(spy.call_count, 1)
            spy.assert_called_with(self.module)
            self.assertNotIn("helper", vars(self.package))
            self.package.helper
            self.assertEqual(spy.call_count, 2)
            self.assertIn("helper", vars(self.package))

    def test_getattr_function_caches_too(self):
        self.assertEqual(self.package.__getattr__("VALUE"), 42)
        self.assertEqual(self.package.__dict__["VALUE"], 42)

    def test_unknown_name(self):
        with self.assertRaises(AttributeError) as ctx:
            self.package.nope
        message = str(ctx.exception)
        self.assertIn("'fake_package'", message)
        self.assertIn("'nope'", message)
        self.assertFalse(hasattr(self.package, "other"))
        self.assertEqual(getattr(self.package, "other", "default"), "default")
        self.assertNotIn(self.module, sys.modules)

    def test_dir_lists_lazy_names(self):
        names = dir(self.package)
        self.assertIn("VALUE", names)
        self.assertIn("helper", names)
        self.assertIn("EAGER", names)
        self.assertIn("__name__", names)
        self.assertEqual(names, sorted(names))
        self.assertEqual(len(names), len(set(names)))
        self.package.VALUE
        self.assertEqual(dir(self.package), names)

    def test_metal_package(self):
        names = dir(metal)
        for name in metal.__all__:
            self.assertIn(name, names)
        self.assertIn("__version__", names)
        with self.assertRaises(AttributeError) as ctx:
            metal.NotAThing
        self.assertIn("'metal'", str(ctx.exception))
        self.assertIn("'NotAThing'", str(ctx.exception))


_IMPORT_CHECK = """
import json, sys
loaded = lambda names: sorted(n for n in names if n in sys.modules)
heavy = ["metal.end_model", "metal.engine", "metal.label_model", "metal.mmtl",
         "metal.multitask", "metal.tuners", "metal.contrib", "metal.training",
         "metal.classifier", "dask"]
import metal
after_metal = loaded(heavy)
import metal.multitask.task_graph
models = ["metal.multitask.mt_end_model", "metal.multitask.mt_label_model",
          "metal.multitask.mt_classifier", "metal.end_model", "metal.label_model"]
after_task_graph = loaded(models)
graph = metal.multitask.TaskGraph
after_graph = loaded(models)
print(json.dumps([after_metal, after_task_graph, after_graph]))
"""


class TestLightImports(unittest.TestCase):
    def test_light_imports(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        proc = subprocess.run(
            [sys.executable, "-c", _IMPORT_CHECK],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        after_metal, after_task_graph, after_graph = json.loads(proc.stdout)
        # `import metal` imports none of the heavy subpackages ...
        self.assertEqual(after_metal, [])
        # ... and the task structures come without the multi-task models.
        self.assertEqual(after_task_graph, [])
        self.assertEqual(after_graph, [])


if __name__ == "__main__":
    unittest.main()
