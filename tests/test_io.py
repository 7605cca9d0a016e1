import io
import json
import os
import pathlib
import pickle
import shlex
import subprocess
import sys
import tempfile
import traceback
import unittest
import uuid
import zipfile

import numpy as np
import torch

import metal
from metal._io import (
    atomic_copy,
    atomic_torch_save,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    check_entries,
    find_class,
    is_plain,
    is_state_dict,
    json_default,
    plain_number,
    read_state_dict,
    safe_torch_load,
    to_plain,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(metal.__file__)))


def _leave_marker(path):
    """Runs only if a pickle is allowed to call functions on load."""
    with open(path, "w") as f:
        f.write("code ran")


class _RunsCodeOnLoad:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_leave_marker, (self.marker,))


class _Shape:
    pass


class _Square(_Shape):
    pass


class _Holder:
    class Nested(_Square):
        pass


class _Unrelated:
    pass


# ------------------------------------------- damaged and malicious files
# Shared by the tests of every loader (model files, checkpoints, weights).
# Text a loader's message must never hold: it would point to unsafe loading.
UNSAFE_ADVICE = ("weights_only", "weights only", "safe_globals", "trusted source")


class _RunsShellOnLoad:
    """Unpickling this calls ``os.system("touch <marker>")``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + shlex.quote(self.marker),))


class _RunsEvalOnLoad:
    """Unpickling this calls ``eval`` on code that creates the marker."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({self.marker!r}, 'w').close()",))


def _payloads(marker):
    return {
        "function": _RunsCodeOnLoad(marker),
        "os.system": _RunsShellOnLoad(marker),
        "eval": _RunsEvalOnLoad(marker),
    }


# Where a payload hides: the shapes of the files metal reads.
_SHAPES = {
    "top level": lambda payload: payload,
    "model file": lambda payload: {
        "format": "snorkel-metal/1",
        "class": "metal.end_model.end_model:EndModel",
        "init_kwargs": {"layer_out_dims": [2, 2]},
        "config": {"seed": 1},
        "state_dict": {"w": torch.ones(2)},
        "extra_state": {"seed": payload},
    },
    "checkpoint": lambda payload: {
        "model": {"w": torch.ones(2)},
        "optimizer": {"state": {0: payload}, "param_groups": []},
        "iteration": 3,
    },
    "state dict value": lambda payload: {"w": torch.ones(2), "b": payload},
    "deeply nested": lambda payload: {
        "state_dict": {"w": torch.ones(2)},
        "extra": [{"a": (1, [{"b": payload}])}],
    },
}


def _rebuilt_zip(obj, path):
    """A torch zip file whose ``data.pkl`` is replaced by a plain pickle of
    ``obj`` (every other record kept): what a hand-made file looks like."""
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("/data.pkl"):
                data = pickle.dumps(obj, protocol=2)
            target.writestr(info, data)


def _write_plain_pickle(obj, path):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


_FORMATS = {
    "zip": lambda obj, path: torch.save(obj, path),
    "legacy": lambda obj, path: torch.save(
        obj, path, _use_new_zipfile_serialization=False
    ),
    "plain pickle": _write_plain_pickle,
    "rebuilt zip": _rebuilt_zip,
}


def malicious_files(folder, marker):
    """``[(case, path)]``: files in ``folder`` that would create the file
    ``marker`` if unpickled, as every payload, hidden in every shape and
    written in every format."""
    files = []
    for fmt, write in _FORMATS.items():
        for shape, build in _SHAPES.items():
            for kind, payload in _payloads(marker).items():
                case = f"{kind} payload in {shape}, {fmt}"
                path = os.path.join(folder, f"evil_{len(files)}.pt")
                write(build(payload), path)
                files.append((case, path))
    return files


class _Unpickler(pickle.Unpickler):
    """The standard (unsafe) unpickler, with torch's storages and tensors
    stubbed out: used only to prove the malicious fixtures are live."""

    def persistent_load(self, pid):
        return None

    def find_class(self, module, name):
        if module.split(".")[0] == "torch":
            return lambda *args, **kwargs: None
        return super().find_class(module, name)


def unpickle_unsafely(path):
    """Run every pickle of a torch file (zip, legacy or plain pickle) with
    the standard unpickler, so its payloads run."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            _Unpickler(io.BytesIO(archive.read(name))).load()
        return
    with open(path, "rb") as f:
        for _ in range(4):  # legacy: magic, protocol, sys info, then the data
            try:
                _Unpickler(f).load()
            except EOFError:
                return


def damaged_copies(good, folder):
    """``[(case, path)]``: damaged forms, in ``folder``, of the torch file
    ``good`` (written in torch's zip format): truncated in the zip and the
    legacy format (at 1 byte, half, all but the last byte), empty, random
    bytes, a fake zip header, text, and a zip file that is not torch's."""
    with open(good, "rb") as f:
        zipped = f.read()
    buffer = io.BytesIO()
    torch.save(safe_torch_load(good), buffer, _use_new_zipfile_serialization=False)
    legacy = buffer.getvalue()
    contents = []
    for fmt, data in (("zip", zipped), ("legacy", legacy)):
        for cut in (1, len(data) // 2, len(data) - 1):
            contents.append(
                (f"{fmt} file cut to {cut} of {len(data)} bytes", data[:cut])
            )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    contents += [
        ("empty file", b""),
        ("random bytes", np.random.RandomState(0).bytes(len(zipped))),
        ("fake zip header", b"PK\x03\x04" + np.random.RandomState(1).bytes(300)),
        ("text", b"just some text\n"),
        ("zip file not written by torch", buffer.getvalue()),
    ]
    files = []
    for index, (case, data) in enumerate(contents):
        path = os.path.join(folder, f"damaged_{index}.pt")
        with open(path, "wb") as f:
            f.write(data)
        files.append((case, path))
    return files


def assert_load_refused(test, load, path, *fragments):
    """Assert that ``load(path)`` raises a ValueError naming the file and each
    of ``fragments``, whose message and printed traceback never point at the
    unsafe way of loading. Returns the message."""
    with test.assertRaises(ValueError) as ctx:
        load(path)
    message = str(ctx.exception)
    test.assertIn(repr(os.fspath(path)), message)
    shown = "".join(traceback.format_exception(ctx.exception))
    for text in (message, shown):
        for advice in UNSAFE_ADVICE:
            test.assertNotIn(advice, text)
    for fragment in fragments:
        test.assertIn(fragment, message)
    return message


class BadFileChecks:
    """A loader on damaged and malicious files and on a folder.

    A ``unittest.TestCase`` mixes this in and defines ``self.dir`` (a scratch
    folder), ``self.good`` (a good file there), ``assert_refused(path,
    *fragments)`` (see ``assert_load_refused``) and ``WHAT``: the kind of file
    the loader's messages name ("model file", "checkpoint").
    """

    WHAT = None

    def test_damaged_files(self):
        for case, path in damaged_copies(self.good, self.dir):
            with self.subTest(case):
                self.assert_refused(path, f"damaged or is not a {self.WHAT}")

    def test_malicious_files_are_refused_and_never_run(self):
        marker = os.path.join(self.dir, "marker.txt")
        for case, path in malicious_files(self.dir, marker):
            with self.subTest(case):
                self.assert_refused(path, "refused, not run")
                self.assertFalse(os.path.exists(marker))

    def test_folder(self):
        self.assert_refused(self.dir, f"is a folder, not a {self.WHAT}")


class _TempDirCase(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def read(self, path, mode="r"):
        with open(path, mode) as f:
            return f.read()

    def write(self, path, content, mode="w"):
        with open(path, mode) as f:
            f.write(content)

    def temp_files(self, folder=None):
        return [n for n in os.listdir(folder or self.dir) if n.startswith(".tmp_")]


# ------------------------------------------------------------------- writing
class TestAtomicWrite(_TempDirCase):
    def test_writes_content_and_returns_destination(self):
        dest = self.path("out.bin")
        result = atomic_write(dest, lambda f: f.write(b"\x00\x01abc"))
        self.assertEqual(result, dest)
        self.assertEqual(self.read(dest, "rb"), b"\x00\x01abc")
        self.assertEqual(self.temp_files(), [])

    def test_text_mode(self):
        dest = self.path("out.txt")
        atomic_write(dest, lambda f: f.write("hello\nworld"), binary=False)
        self.assertEqual(self.read(dest), "hello\nworld")

    def test_accepts_path_objects_and_returns_a_string(self):
        dest = pathlib.Path(self.dir) / "p.bin"
        result = atomic_write(dest, lambda f: f.write(b"x"))
        self.assertIsInstance(result, str)
        self.assertEqual(result, str(dest))
        self.assertEqual(dest.read_bytes(), b"x")

    def test_creates_missing_folders(self):
        dest = self.path("a", "b", "c", "out.bin")
        atomic_write(dest, lambda f: f.write(b"deep"))
        self.assertEqual(self.read(dest, "rb"), b"deep")
        self.assertEqual(self.temp_files(self.path("a", "b", "c")), [])

    def test_replaces_longer_old_content_entirely(self):
        dest = self.path("out.txt")
        self.write(dest, "a much longer old content")
        atomic_write(dest, lambda f: f.write("new"), binary=False)
        self.assertEqual(self.read(dest), "new")

    def test_failure_keeps_old_content_and_leaves_no_temp_file(self):
        dest = self.path("out.txt")
        self.write(dest, "old")

        def broken(f):
            f.write(b"partial new content")
            f.flush()
            raise RuntimeError("disk on fire")

        with self.assertRaisesRegex(RuntimeError, "disk on fire"):
            atomic_write(dest, broken)
        self.assertEqual(self.read(dest), "old")
        self.assertEqual(self.temp_files(), [])
        self.assertEqual(os.listdir(self.dir), ["out.txt"])

    def test_interrupt_keeps_old_content_and_leaves_no_temp_file(self):
        dest = self.path("out.txt")
        self.write(dest, "old")

        def interrupted(f):
            f.write(b"partial")
            raise KeyboardInterrupt

        with self.assertRaises(KeyboardInterrupt):
            atomic_write(dest, interrupted)
        self.assertEqual(self.read(dest), "old")
        self.assertEqual(self.temp_files(), [])

    def test_failure_without_old_file_creates_nothing(self):
        dest = self.path("new.bin")

        def broken(f):
            raise ValueError("nope")

        with self.assertRaises(ValueError):
            atomic_write(dest, broken)
        self.assertFalse(os.path.exists(dest))
        self.assertEqual(os.listdir(self.dir), [])


class TestAtomicTorchSave(_TempDirCase):
    def test_saves_loadable_object(self):
        dest = self.path("sub", "model.pt")
        state = {"w": torch.arange(6.0).reshape(2, 3), "step": 3}
        self.assertEqual(atomic_torch_save(state, dest), dest)
        loaded = torch.load(dest, weights_only=True)
        self.assertTrue(torch.equal(loaded["w"], state["w"]))
        self.assertEqual(loaded["step"], 3)
        self.assertEqual(self.temp_files(self.path("sub")), [])

    def test_passes_keyword_arguments_to_torch_save(self):
        dest = self.path("legacy.pt")
        atomic_torch_save(
            {"w": torch.ones(2)}, dest, _use_new_zipfile_serialization=False
        )
        self.assertFalse(zipfile.is_zipfile(dest))
        self.assertTrue(torch.equal(safe_torch_load(dest)["w"], torch.ones(2)))
        atomic_torch_save({"w": torch.ones(2)}, dest)
        self.assertTrue(zipfile.is_zipfile(dest))

    def test_unpicklable_object_keeps_old_file(self):
        dest = self.path("model.pt")
        torch.save({"w": torch.zeros(3)}, dest)
        before = self.read(dest, "rb")
        with self.assertRaises(Exception):
            atomic_torch_save({"f": lambda x: x}, dest)
        self.assertEqual(self.read(dest, "rb"), before)
        self.assertEqual(self.temp_files(), [])


class TestAtomicWriteJson(_TempDirCase):
    def test_writes_json_with_non_json_values(self):
        dest = self.path("report", "r.json")
        obj = {
            "array": np.array([[1, 2], [3, 4]]),
            "float": np.float32(0.5),
            "int": np.int64(7),
            "tensor": torch.tensor([1.5, 2.5]),
            "set": {9, 2, 7},
            "nested": [{"x": np.bool_(True)}],
            "plain": "text",
        }
        self.assertEqual(atomic_write_json(obj, dest), dest)
        with open(dest) as f:
            loaded = json.load(f)
        self.assertEqual(
            loaded,
            {
                "array": [[1, 2], [3, 4]],
                "float": 0.5,
                "int": 7,
                "tensor": [1.5, 2.5],
                "set": [2, 7, 9],
                "nested": [{"x": True}],
                "plain": "text",
            },
        )

    def test_indent(self):
        dest = self.path("r.json")
        atomic_write_json({"a": [1, 2]}, dest)
        self.assertEqual(self.read(dest), '{\n "a": [\n  1,\n  2\n ]\n}')
        atomic_write_json({"a": [1, 2]}, dest, indent=None)
        self.assertEqual(self.read(dest), '{"a": [1, 2]}')

    def test_failure_keeps_old_content(self):
        dest = self.path("r.json")
        self.write(dest, '{"old": 1}')
        circular = []
        circular.append(circular)
        with self.assertRaises(ValueError):
            atomic_write_json({"bad": circular}, dest)
        self.assertEqual(self.read(dest), '{"old": 1}')
        self.assertEqual(self.temp_files(), [])


class TestAtomicWriteText(_TempDirCase):
    def test_writes_exact_text(self):
        dest = self.path("x", "log.txt")
        text = "line 1\nline 2\n\ttabbed"
        self.assertEqual(atomic_write_text(text, dest), dest)
        with open(dest, newline="") as f:
            self.assertEqual(f.read(), text)

    def test_overwrites(self):
        dest = self.path("log.txt")
        atomic_write_text("first version", dest)
        atomic_write_text("2nd", dest)
        self.assertEqual(self.read(dest), "2nd")
        self.assertEqual(self.temp_files(), [])


class TestAtomicCopy(_TempDirCase):
    def test_copies_bytes(self):
        source = self.path("src.bin")
        payload = bytes(range(256)) * 50
        self.write(source, payload, "wb")
        dest = self.path("copies", "dst.bin")
        self.assertEqual(atomic_copy(source, dest), dest)
        self.assertEqual(self.read(dest, "rb"), payload)
        self.assertEqual(self.read(source, "rb"), payload)

    def test_missing_source_keeps_old_destination(self):
        dest = self.path("dst.bin")
        self.write(dest, b"old", "wb")
        with self.assertRaises(FileNotFoundError):
            atomic_copy(self.path("missing.bin"), dest)
        self.assertEqual(self.read(dest, "rb"), b"old")
        self.assertEqual(self.temp_files(), [])


class TestJsonDefault(unittest.TestCase):
    def test_numpy_arrays_and_scalars(self):
        self.assertEqual(json_default(np.array([[1, 2], [3, 4]])), [[1, 2], [3, 4]])
        value = json_default(np.float64(0.25))
        self.assertEqual(value, 0.25)
        self.assertIs(type(value), float)
        value = json_default(np.int32(4))
        self.assertEqual(value, 4)
        self.assertIs(type(value), int)
        self.assertIs(json_default(np.bool_(False)), False)

    def test_tensors_become_lists(self):
        t = torch.tensor([[1.0, 2.0]], requires_grad=True)
        self.assertEqual(json_default(t), [[1.0, 2.0]])
        self.assertEqual(json_default(torch.tensor(3)), 3)

    def test_sets_become_sorted_lists(self):
        self.assertEqual(list({9, 2, 7}), [9, 2, 7])  # sets iterate unsorted
        self.assertEqual(json_default({9, 2, 7}), [2, 7, 9])
        self.assertEqual(json_default(frozenset({"b", "a"})), ["a", "b"])
        # Mixed types cannot be compared; they are sorted by their strings.
        self.assertEqual(json_default({"b", 1}), [1, "b"])

    def test_numbers_sorted_as_numbers(self):
        self.assertEqual(json_default({2, 16}), [2, 16])

    def test_other_objects_become_strings(self):
        class Named:
            def __str__(self):
                return "<named>"

        self.assertEqual(json_default(Named()), "<named>")
        self.assertEqual(json_default(1 + 2j), "(1+2j)")
        self.assertEqual(
            json.dumps({"c": Named()}, default=json_default), '{"c": "<named>"}'
        )


# ------------------------------------------------------------------- reading
class TestSafeTorchLoad(_TempDirCase):
    def assert_refused(self, path, what=None):
        kwargs = {} if what is None else {"what": what}
        # Never point the user at the unsafe way of loading, even through
        # the chained exception printed in the traceback.
        return assert_load_refused(self, lambda p: safe_torch_load(p, **kwargs), path)

    def test_round_trip(self):
        path = self.path("state.pt")
        state = {"w": torch.randn(3, 2), "names": ["a", "b"], "n": 2, "x": None}
        torch.save(state, path)
        loaded = safe_torch_load(path)
        self.assertTrue(torch.equal(loaded["w"], state["w"]))
        self.assertEqual(loaded["names"], ["a", "b"])
        self.assertEqual(loaded["n"], 2)
        self.assertIsNone(loaded["x"])
        self.assertEqual(loaded["w"].device.type, "cpu")

    def test_accepts_path_objects(self):
        path = pathlib.Path(self.dir) / "t.pt"
        torch.save(torch.ones(2), path)
        self.assertTrue(torch.equal(safe_torch_load(path), torch.ones(2)))

    def test_legacy_format_loads(self):
        path = self.path("legacy.pt")
        torch.save({"w": torch.eye(2)}, path, _use_new_zipfile_serialization=False)
        self.assertTrue(torch.equal(safe_torch_load(path)["w"], torch.eye(2)))

    def test_missing_file(self):
        with self.assertRaises(FileNotFoundError):
            safe_torch_load(self.path("nothing.pt"))

    def test_empty_file(self):
        path = self.path("empty.pt")
        self.write(path, b"", "wb")
        self.assert_refused(path)

    def test_message_names_what_the_file_should_be(self):
        path = self.path("empty.pt")
        self.write(path, b"", "wb")
        self.assertIn("checkpoint", self.assert_refused(path, what="checkpoint"))

    def _truncated(self, name, **save_kwargs):
        full = self.path(name + "_full.pt")
        torch.save({"w": torch.randn(64, 64)}, full, **save_kwargs)
        data = self.read(full, "rb")
        paths = []
        for cut in (1, 40, len(data) // 2, len(data) - 1):
            path = self.path(f"{name}_{cut}.pt")
            self.write(path, data[:cut], "wb")
            paths.append(path)
        return paths

    def test_truncated_zip_file(self):
        for path in self._truncated("zip"):
            with self.subTest(path=path):
                self.assert_refused(path)

    def test_truncated_legacy_file(self):
        for path in self._truncated("legacy", _use_new_zipfile_serialization=False):
            with self.subTest(path=path):
                self.assert_refused(path)

    def test_random_bytes(self):
        path = self.path("random.pt")
        self.write(path, np.random.RandomState(0).bytes(500), "wb")
        self.assert_refused(path)

    def test_fake_zip_header(self):
        path = self.path("fake.pt")
        self.write(path, b"PK\x03\x04" + b"\x17" * 200, "wb")
        self.assert_refused(path)

    def test_text_file(self):
        path = self.path("notes.pt")
        self.write(path, "just some text\n")
        self.assert_refused(path)

    def test_pickle_that_runs_code_is_refused_and_never_run(self):
        marker = self.path("marker.txt")
        path = self.path("evil.pt")
        torch.save({"w": torch.ones(1), "payload": _RunsCodeOnLoad(marker)}, path)
        self.assertFalse(os.path.exists(marker))
        self.assert_refused(path)
        self.assertFalse(os.path.exists(marker))

    def test_pickle_that_runs_code_in_legacy_format_is_refused(self):
        marker = self.path("marker.txt")
        path = self.path("evil_legacy.pt")
        torch.save(
            [_RunsCodeOnLoad(marker)], path, _use_new_zipfile_serialization=False
        )
        self.assert_refused(path)
        self.assertFalse(os.path.exists(marker))

    def test_every_damaged_form_is_refused(self):
        good = self.path("good.pt")
        torch.save({"w": torch.randn(16, 16), "names": ["a"]}, good)
        for case, path in damaged_copies(good, self.dir):
            with self.subTest(case):
                message = self.assert_refused(path, what="model file")
                self.assertIn("damaged or is not a model file", message)

    def test_a_complete_legacy_copy_of_a_good_file_loads(self):
        good = self.path("good.pt")
        torch.save({"w": torch.randn(4)}, good)
        legacy = self.path("legacy.pt")
        torch.save(safe_torch_load(good), legacy, _use_new_zipfile_serialization=False)
        self.assertTrue(
            torch.equal(safe_torch_load(legacy)["w"], torch.load(good)["w"])
        )

    def test_folder(self):
        message = self.assert_refused(self.dir, what="checkpoint")
        self.assertIn("is a folder, not a checkpoint", message)

    @unittest.skipUnless(hasattr(os, "mkfifo"), "named pipes need POSIX")
    def test_named_pipe_is_refused_without_blocking(self):
        path = self.path("pipe.pt")
        os.mkfifo(path)
        self.assertIn("not a regular file", self.assert_refused(path))

    def test_malicious_files_are_refused_and_never_run(self):
        marker = self.path("marker.txt")
        for case, path in malicious_files(self.dir, marker):
            with self.subTest(case):
                message = self.assert_refused(path)
                self.assertIn("refused, not run", message)
                self.assertFalse(os.path.exists(marker))

    def test_malicious_fixtures_run_code_when_unpickled_unsafely(self):
        """The fixtures above are live: the standard unpickler runs them."""
        marker = self.path("marker.txt")
        for case, path in malicious_files(self.dir, marker):
            with self.subTest(case):
                unpickle_unsafely(path)
                self.assertTrue(os.path.exists(marker))
                os.remove(marker)


class TestReadStateDict(_TempDirCase):
    def setUp(self):
        super().setUp()
        torch.manual_seed(0)
        self.state = torch.nn.Linear(3, 2).state_dict()

    def assert_same_state(self, got):
        self.assertEqual(list(got), list(self.state))
        for key, value in self.state.items():
            self.assertTrue(torch.equal(got[key], value))

    def test_bare_state_dict(self):
        path = self.path("bare.pt")
        torch.save(self.state, path)
        self.assert_same_state(read_state_dict(path))

    def test_checkpoint_model_entry(self):
        path = self.path("checkpoint.pt")
        torch.save({"model": self.state, "optimizer": {"lr": 0.1}, "epoch": 3}, path)
        self.assert_same_state(read_state_dict(path))

    def test_model_bundle_state_dict_entry(self):
        path = self.path("bundle.pt")
        torch.save(
            {
                "class": "metal.end_model:EndModel",
                "state_dict": self.state,
                "config": {"seed": 1},
            },
            path,
        )
        self.assert_same_state(read_state_dict(path))

    def test_no_state_dict(self):
        for name, obj in [
            ("config", {"config": {"seed": 1}, "n": 3}),
            ("list", [torch.ones(2)]),
            ("tensor", torch.ones(2)),
            ("mixed", {"w": torch.ones(2), "note": "hello"}),
        ]:
            with self.subTest(name=name):
                path = self.path(name + ".pt")
                torch.save(obj, path)
                with self.assertRaises(ValueError) as ctx:
                    read_state_dict(path)
                self.assertIn(repr(path), str(ctx.exception))

    def test_damaged_file(self):
        path = self.path("damaged.pt")
        self.write(path, b"\x80\x02garbage", "wb")
        with self.assertRaises(ValueError) as ctx:
            read_state_dict(path)
        self.assertIn(repr(path), str(ctx.exception))
        self.assertIn("model file", str(ctx.exception))

    def test_missing_file(self):
        with self.assertRaises(FileNotFoundError):
            read_state_dict(self.path("missing.pt"))

    def test_entry_that_is_not_a_state_dict(self):
        for name, obj in [
            ("model list", {"model": [torch.ones(2)], "optimizer": None}),
            ("model values", {"model": {"w": 1.0}}),
            ("state_dict string", {"class": "x", "state_dict": "weights"}),
            ("state_dict keys", {"state_dict": {0: torch.ones(2)}}),
        ]:
            with self.subTest(name=name):
                path = self.path(name.replace(" ", "_") + ".pt")
                torch.save(obj, path)
                with self.assertRaises(ValueError) as ctx:
                    read_state_dict(path)
                self.assertIn(repr(path), str(ctx.exception))
                self.assertIn("damaged", str(ctx.exception))
                self.assertIn("entry is not a state dict", str(ctx.exception))

    def test_bare_state_dict_with_a_weight_named_model(self):
        path = self.path("named.pt")
        state = {"model": torch.ones(2), "state_dict": torch.zeros(1)}
        torch.save(state, path)
        self.assertEqual(list(read_state_dict(path)), ["model", "state_dict"])

    def test_empty_state_dict_of_a_model_without_weights(self):
        path = self.path("empty_state.pt")
        torch.save({}, path)
        self.assertEqual(read_state_dict(path), {})

    def test_damaged_and_malicious_files(self):
        good = self.path("good.pt")
        torch.save(self.state, good)
        marker = self.path("marker.txt")
        cases = damaged_copies(good, self.dir) + malicious_files(self.dir, marker)
        for case, path in cases:
            with self.subTest(case):
                with self.assertRaises(ValueError) as ctx:
                    read_state_dict(path)
                self.assertIn(repr(path), str(ctx.exception))
                self.assertFalse(os.path.exists(marker))


class TestCheckEntries(_TempDirCase):
    TYPES = {"class": str, "state_dict": dict, "init_kwargs": (dict, type(None))}

    def check(self, data):
        with self.assertRaises(ValueError) as ctx:
            check_entries(data, self.path("m.pt"), self.TYPES, "model file")
        message = str(ctx.exception)
        self.assertIn(repr(self.path("m.pt")), message)
        return message

    def test_good_entries_pass(self):
        good = {"class": "a:B", "state_dict": {}, "init_kwargs": None, "more": 1}
        check_entries(good, self.path("m.pt"), self.TYPES)
        check_entries(dict(good, init_kwargs={"k": 2}), self.path("m.pt"), self.TYPES)

    def test_not_a_dict(self):
        message = self.check([1, 2])
        self.assertIn("is not a model file", message)
        self.assertIn("list", message)

    def test_missing_entries_are_named(self):
        self.assertIn(
            "lacks its 'class' entry.",
            self.check({"state_dict": {}, "init_kwargs": {}}),
        )
        self.assertIn(
            "lacks its 'class', 'state_dict' entries.", self.check({"init_kwargs": {}})
        )

    def test_wrong_types_are_named(self):
        good = {"class": "a:B", "state_dict": {}, "init_kwargs": None}
        for key, value, expected in [
            ("class", 3, "'class' entry is of type int, not str."),
            ("state_dict", [1], "'state_dict' entry is of type list, not dict."),
            (
                "init_kwargs",
                "x",
                "'init_kwargs' entry is of type str, not dict or None",
            ),
        ]:
            with self.subTest(key=key):
                message = self.check(dict(good, **{key: value}))
                self.assertIn("is damaged", message)
                self.assertIn(expected, message)


class TestIsStateDict(unittest.TestCase):
    def test_state_dicts(self):
        self.assertTrue(is_state_dict({}))
        self.assertTrue(is_state_dict(torch.nn.Linear(2, 2).state_dict()))

    def test_other_values(self):
        for value in ([torch.ones(1)], {"w": 1.0}, {1: torch.ones(1)}, None, "w"):
            with self.subTest(value=value):
                self.assertFalse(is_state_dict(value))


# ---------------------------------------------------------------- plain data
def _a_function(x):
    return x


class _Opaque:
    def __str__(self):
        return "opaque!"


class TestIsPlain(unittest.TestCase):
    def test_plain_values(self):
        for value in [
            1,
            2.5,
            "s",
            None,
            True,
            np.float32(1.0),
            np.int64(2),
            np.zeros((2, 2)),
            torch.zeros(3),
            [1, [2, (3, "x")]],
            (),
            {"a": {"b": [1, np.ones(2)]}, "c": torch.ones(1)},
            {},
        ]:
            with self.subTest(value=value):
                self.assertTrue(is_plain(value))

    def test_not_plain(self):
        for value in [
            {1: 2},
            {"a": {3: "x"}},
            {1, 2},
            object(),
            _a_function,
            lambda: 1,
            [1, object()],
            (1, {"a": _Opaque()}),
            {"a": {"b"}},
        ]:
            with self.subTest(value=value):
                self.assertFalse(is_plain(value))


class TestToPlain(unittest.TestCase):
    def test_scalars_unchanged(self):
        for value in [1, 2.5, "s", None, True]:
            with self.subTest(value=value):
                self.assertIs(to_plain(value), value)

    def test_numpy(self):
        out = to_plain(np.arange(4).reshape(2, 2))
        self.assertEqual(out, [[0, 1], [2, 3]])
        self.assertIsInstance(out, list)
        self.assertIs(type(out[0][0]), int)
        for value, expected, kind in [
            (np.float32(0.5), 0.5, float),
            (np.int16(3), 3, int),
            (np.bool_(True), True, bool),
        ]:
            with self.subTest(value=value):
                out = to_plain(value)
                self.assertEqual(out, expected)
                self.assertIs(type(out), kind)

    def test_tensors_become_detached_cpu_tensors(self):
        t = torch.ones(2, 3, requires_grad=True)
        out = to_plain(t)
        self.assertIsInstance(out, torch.Tensor)
        self.assertEqual(out.device.type, "cpu")
        self.assertFalse(out.requires_grad)
        self.assertTrue(torch.equal(out, torch.ones(2, 3)))

    def test_sets_become_sorted_lists(self):
        self.assertEqual(to_plain({9, 2, 7, 16}), [2, 7, 9, 16])
        self.assertEqual(to_plain(frozenset({"b", "c", "a"})), ["a", "b", "c"])
        self.assertEqual(to_plain({np.int64(2), np.int64(1)}), [1, 2])

    def test_set_of_mixed_types(self):
        out = to_plain({1, "a"})
        self.assertIsInstance(out, list)
        self.assertEqual(sorted(out, key=str), [1, "a"])

    def test_callables(self):
        for value in [_a_function, lambda x: x, len, _Opaque]:
            with self.subTest(value=value):
                self.assertIsNone(to_plain(value))
                self.assertEqual(to_plain(value, callables="str"), str(value))

    def test_other_objects_become_strings(self):
        self.assertEqual(to_plain(_Opaque()), "opaque!")
        self.assertEqual(to_plain(1 + 1j), "(1+1j)")

    def test_nested_containers(self):
        value = {
            "a": [np.int64(1), {"b": np.array([1.5])}],
            "t": (np.float64(2.0), _a_function, {16, 9}),
            "o": _Opaque(),
        }
        out = to_plain(value)
        self.assertEqual(
            out,
            {"a": [1, {"b": [1.5]}], "t": (2.0, None, [9, 16]), "o": "opaque!"},
        )
        self.assertIsInstance(out["t"], tuple)
        self.assertIs(type(out["a"][0]), int)
        with_str = to_plain(value, callables="str")
        self.assertEqual(with_str["t"][1], str(_a_function))

    def test_result_survives_a_safe_round_trip(self):
        config = {
            "layers": np.array([4, 2]),
            "lr": np.float32(0.01),
            "fn": _a_function,
            "tags": {"y", "x"},
            "model": _Opaque(),
            "w": torch.ones(2),
            "nested": [(np.int8(1), None)],
        }
        plain = to_plain(config)
        self.assertTrue(is_plain(plain))
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "c.pt")
            atomic_torch_save(plain, path)
            loaded = safe_torch_load(path)
        self.assertEqual(loaded["layers"], [4, 2])
        self.assertAlmostEqual(loaded["lr"], 0.01, places=6)
        self.assertIsNone(loaded["fn"])
        self.assertEqual(loaded["tags"], ["x", "y"])
        self.assertEqual(loaded["model"], "opaque!")
        self.assertTrue(torch.equal(loaded["w"], torch.ones(2)))
        self.assertEqual(loaded["nested"], [(1, None)])


class TestPlainNumber(unittest.TestCase):
    def check(self, value, expected, kind, tidy=False):
        out = plain_number(value, tidy=tidy)
        self.assertEqual(out, expected)
        self.assertIs(type(out), kind)

    def test_numpy_and_torch_scalars(self):
        self.check(np.float64(2.5), 2.5, float)
        self.check(np.int64(3), 3, int)
        self.check(torch.tensor(2.5), 2.5, float)
        self.check(torch.tensor([7]), 7, int)
        self.check(torch.tensor([[1.5]]), 1.5, float)

    def test_other_values_unchanged(self):
        t = torch.tensor([1.0, 2.0])
        self.assertIs(plain_number(t), t)
        self.assertIs(plain_number(t, tidy=True), t)
        self.assertEqual(plain_number("2.0", tidy=True), "2.0")
        self.assertIsNone(plain_number(None))
        self.check(3, 3, int)
        self.check(True, True, bool, tidy=True)

    def test_without_tidy_integral_floats_stay_floats(self):
        self.check(2.0, 2.0, float)
        self.check(np.float32(2.0), 2.0, float)

    def test_tidy(self):
        self.check(2.0, 2, int, tidy=True)
        self.check(0.0, 0, int, tidy=True)
        self.check(np.float32(3.0), 3, int, tidy=True)
        self.check(torch.tensor(4.0), 4, int, tidy=True)
        self.check(2.5, 2.5, float, tidy=True)
        self.check(float("inf"), float("inf"), float, tidy=True)
        self.assertTrue(np.isnan(plain_number(float("nan"), tidy=True)))


# ------------------------------------------------------------------ classes
class TestFindClass(unittest.TestCase):
    def test_finds_base_and_subclasses(self):
        self.assertIs(find_class(f"{__name__}:_Shape", _Shape), _Shape)
        self.assertIs(find_class(f"{__name__}:_Square", _Shape), _Square)
        self.assertIs(find_class(f"{__name__}:_Holder.Nested", _Shape), _Holder.Nested)

    def test_finds_metal_classes_already_imported(self):
        from metal.callbacks import Callback, Timer

        self.assertIs(find_class("metal.callbacks:Callback", Callback), Callback)
        with self.assertRaises(ValueError):
            find_class("metal.callbacks:Timer", Callback)
        self.assertIs(find_class("metal.callbacks:Timer", Timer), Timer)

    def test_not_a_subclass(self):
        with self.assertRaises(ValueError) as ctx:
            find_class(f"{__name__}:_Unrelated", _Shape, what="Shape class")
        message = str(ctx.exception)
        self.assertIn(repr(f"{__name__}:_Unrelated"), message)
        self.assertIn("Shape class", message)

    def test_wrong_names(self):
        for qualified in [
            f"{__name__}:_Circle",
            f"{__name__}.other:_Square",
            "_Square",
            f"{__name__}:Nested",
            "",
        ]:
            with self.subTest(qualified=qualified):
                with self.assertRaises(ValueError):
                    find_class(qualified, _Shape)

    def test_missing_metal_module(self):
        with self.assertRaises(ValueError):
            find_class("metal.no_such_module_here:Thing", _Shape)

    def test_non_metal_modules(self):
        for qualified in ["os:path", "json:JSONDecoder", "collections:OrderedDict"]:
            with self.subTest(qualified=qualified):
                with self.assertRaises(ValueError):
                    find_class(qualified, _Shape)

    def test_never_imports_a_non_metal_module(self):
        with tempfile.TemporaryDirectory() as folder:
            marker = os.path.join(folder, "imported.txt")
            tag = uuid.uuid4().hex
            # "metalx..." starts like the package but is not part of it.
            names = [f"side_effect_{tag}", f"metalx_{tag}"]
            for name in names:
                with open(os.path.join(folder, name + ".py"), "w") as f:
                    f.write(
                        f"open({marker!r}, 'a').write('ran')\n"
                        "class Thing:\n    pass\n"
                    )
            sys.path.insert(0, folder)
            try:
                for name in names:
                    with self.subTest(module=name):
                        with self.assertRaises(ValueError):
                            find_class(f"{name}:Thing", _Shape)
                        self.assertNotIn(name, sys.modules)
                        self.assertFalse(os.path.exists(marker))
            finally:
                sys.path.remove(folder)
                for name in names:
                    sys.modules.pop(name, None)

    def test_imports_metal_module_when_needed(self):
        # In a fresh interpreter, so that the module is surely not imported yet.
        module = "metal.contrib.modules.sparse_linear_module"
        script = (
            "import sys, torch\n"
            "from metal._io import find_class\n"
            f"assert {module!r} not in sys.modules\n"
            f"cls = find_class({module + ':SparseLinearModule'!r}, torch.nn.Module)\n"
            f"print(cls.__module__, cls.__qualname__, {module!r} in sys.modules)\n"
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        proc = subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.split(), [module, "SparseLinearModule", "True"])


if __name__ == "__main__":
    unittest.main()
