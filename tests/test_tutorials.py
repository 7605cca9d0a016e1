"""Execute every tutorial notebook headless and fail on any error."""

import glob
import os
import shutil
import tempfile
import unittest

TUTORIALS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tutorials")
NOTEBOOKS = sorted(glob.glob(os.path.join(TUTORIALS, "*.ipynb")))


def execute(path: str) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    # Run in a scratch copy of tutorials/ so nothing is written into the repo.
    with tempfile.TemporaryDirectory() as scratch:
        workdir = os.path.join(scratch, "tutorials")
        shutil.copytree(
            TUTORIALS,
            workdir,
            ignore=shutil.ignore_patterns("*.ipynb", "__pycache__", "checkpoints"),
        )
        client = NotebookClient(
            notebook,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": workdir}},
        )
        client.execute()


class TutorialNotebooksTest(unittest.TestCase):
    def test_there_are_notebooks(self):
        self.assertGreater(len(NOTEBOOKS), 0)

    def test_notebooks_execute(self):
        os.environ.setdefault("MPLBACKEND", "Agg")
        for path in NOTEBOOKS:
            with self.subTest(notebook=os.path.basename(path)):
                execute(path)


if __name__ == "__main__":
    unittest.main()
