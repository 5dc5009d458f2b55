"""Optional side-by-side runs of the original htq (PyPI 0.1.0) and Celery: skipped unless present.

Neither is a dependency, and neither is installed by the harness. The original htq installs
under the same import name as this project (`htq`), so it can only be found in another
environment; Celery is looked for in this one. No comparison is measured yet even when one
is found: the run says so instead of guessing at an unverified set-up.
"""

from __future__ import annotations

import importlib.util

from bench.scenarios._context import Context, Outcome


def run(ctx: Context) -> Outcome:
    notes = {
        "htq 0.1.0": "skipped: it shares the import name `htq` with this project, "
        "so it cannot be installed beside it",
        "celery": "skipped: not installed"
        if importlib.util.find_spec("celery") is None
        else "skipped: installed, but no Celery comparison is implemented yet",
    }
    for name, note in notes.items():
        print(f"  {name}: {note}")
    return Outcome(data={"skipped": notes})
