"""Run every benchmark in this folder (``make bench``).

Each benchmark prints its own targets and PASS/FAIL lines; this script runs
them one after another in fresh processes and summarises the exit codes.
Pass ``--quick`` to run them at reduced sizes.
"""

import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    extra = sys.argv[1:]
    scripts = sorted(
        path
        for path in glob.glob(os.path.join(HERE, "*.py"))
        if os.path.basename(path) not in ("run_all.py", "__init__.py")
        and not os.path.basename(path).startswith("_")
    )
    failures = []
    for path in scripts:
        name = os.path.basename(path)
        print(f"\n{'=' * 78}\n{name}\n{'=' * 78}", flush=True)
        code = subprocess.call(
            [sys.executable, path, *extra], cwd=os.path.dirname(HERE)
        )
        if code != 0:
            failures.append(name)
    print(f"\n{len(scripts) - len(failures)}/{len(scripts)} benchmarks ran to the end")
    if failures:
        print("failed to run: " + ", ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
