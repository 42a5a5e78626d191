"""nbval on several processes: the order the notebooks are handed out in, and how trained numbers are compared.

``make test`` runs ``pytest --nbval-lax -n 2 --dist loadfile --no-loadscope-reorder`` over the notebooks (the report
after, alone). pytest-xdist then gives each worker one notebook, and the next notebook in this order to the first
worker that is down to its last two cells (without ``--no-loadscope-reorder`` it would take the notebooks with the
most cells first). Notebooks that ask for the same training run take turns on its lock (it is trained once), so the
longest notebooks go first and the ones that mostly reuse runs last: 04 (every method on digits-LT) and 01 (its own
subset runs) start; 06, 02, 03 and 00 follow, finding most of their digits runs already trained.

Each worker starts its notebook's kernel the way the runner does (:mod:`semscale_lib.runner.kernel_start`): one
kernel start at a time on this machine, and a kernel that never answers is started again, so that two workers
starting kernels at the same moment cannot be handed the same port.

Cells tagged ``semscale-tolerance`` (a notebook's checked block of trained numbers,
:mod:`semscale_lib.studies.tolerance`) are compared by ``compare_checked``: numbers within their tolerance, verdicts
equal unless on the edge. Every other ``nbval-check-output`` cell is compared exactly, as nbval does.
"""
from __future__ import annotations

from nbval import plugin as nbval_plugin
from nbval.plugin import IPyNbCell

from semscale_lib.runner.kernel_start import start_kernel_and
from semscale_lib.studies.tolerance import TOLERANCE_TAG, compare_checked

#: the order pytest-xdist hands the notebooks out in (see above)
ORDER = ["04", "01", "06", "02", "03", "00"]


def pytest_collection_modifyitems(config, items):
    if not any(item.path.suffix == ".ipynb" for item in items):
        return
    position = {id(item): i for i, item in enumerate(items)}    # cells keep their order within a notebook

    def rank(item):
        key = item.path.name[:2] if item.path.suffix == ".ipynb" else ""
        return (ORDER.index(key) if key in ORDER else len(ORDER), key, position[id(item)])
    items.sort(key=rank)


def _text(outputs) -> str:
    """The text of a cell's outputs (streams, then plain-text results), as nbval hands them over."""
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "".join(part if part.endswith("\n") else part + "\n" for part in parts)


_exact_compare = IPyNbCell.compare_outputs


def compare_outputs(self, test, ref, skip_compare=None):
    """nbval's comparison, except for cells tagged ``semscale-tolerance``: there :func:`compare_checked` on the
    outputs' text, and the problems it finds become nbval's failure report."""
    if TOLERANCE_TAG not in self.cell.metadata.get("tags", []):
        return _exact_compare(self, test, ref, skip_compare)
    problems = compare_checked(_text(ref), _text(test))
    self.comparison_traceback = [f"  {problem}" for problem in problems]
    return not problems


IPyNbCell.compare_outputs = compare_outputs


class OneAtATimeKernel(nbval_plugin.RunningKernel):
    """nbval's kernel, started under the machine-wide kernel-start lock and started again if it never answers."""

    def __init__(self, *args, **kwargs):
        def start(kernel_answered):
            try:
                super(OneAtATimeKernel, self).__init__(*args, **kwargs)
            except RuntimeError:
                self._stop_half_started()
                raise
            kernel_answered()

        start_kernel_and(start, what="nbval")

    def _stop_half_started(self) -> None:
        """A kernel that answered its first request but not on IOPub (nbval's second check) is shut down before the
        next attempt; one that never answered was already shut down by nbval."""
        if getattr(self, "km", None) is not None:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
            self.km = self.kc = None


nbval_plugin.RunningKernel = OneAtATimeKernel
