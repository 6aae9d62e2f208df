"""Differential fuzzing of corrnet's public API against PyTorch (and SciPy for the filters).

    PYTHONPATH=tests python -m fuzz --calls 30000          # the nightly run (`make fuzz`)
    PYTHONPATH=tests python -m fuzz repro SEED INDEX       # one case as a runnable script

Modules: `cases` turns (seed, index) into one call written as Python code that runs with
either library; `worker` executes cases in a bounded subprocess and judges each outcome;
`runner` drives the workers (modes, time limits, restarts) and writes the report. The rules
that classify an outcome are in `worker` (its docstring is the reference).
"""
