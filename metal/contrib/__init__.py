"""Optional extras built on top of ``metal``: network modules, baselines,
featurizers, information-extraction helpers and plots.

Nothing in the core package imports ``metal.contrib``; each subpackage with
extra dependencies lists them in its own ``requirements.txt`` (and in the
``contrib`` extra of ``setup.py``).
"""
