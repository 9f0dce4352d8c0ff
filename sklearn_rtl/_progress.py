"""A progress bar over a whole RTL fit: every epoch of every stage, with stage and loss."""

from __future__ import annotations

import sys

from skorch.callbacks import Callback

__all__ = ["FitProgressBar"]


class FitProgressBar(Callback):
    """One tqdm progress bar for a whole RTL fit, advanced once per epoch.

    A fit runs several skorch trainings (every pruning round, then the joint retraining),
    so skorch's own per-batch ``ProgressBar`` restarts at every stage. This bar counts the
    epochs of all stages together and shows the current stage and training loss: unlike
    other callbacks, which every stage copies afresh, it spans the fit (``spans_fit``).

    Parameters
    ----------
    total_epochs : int, default=None
        Epochs of the whole fit, ``rewind_epoch + (n_prune_rounds + 1) * max_epochs``;
        ``None`` shows a running count without a total.
    desc : str, default="RTL fit"
        Label written before the bar.
    file : file-like, default=None
        Where the bar is written; ``None`` is ``sys.stderr``.
    leave : bool, default=True
        Keep the finished bar on screen.

    Attributes
    ----------
    n_epochs_ : int
        Epochs seen so far.

    Examples
    --------
    >>> import io
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_rtl import RTLClassifier
    >>> from sklearn_rtl._progress import FitProgressBar
    >>> X, y = load_digits(return_X_y=True)
    >>> bar = FitProgressBar(total_epochs=4, file=io.StringIO())
    >>> clf = RTLClassifier(hidden_layer_sizes=(8,), n_clusters=2, n_prune_rounds=1,
    ...                     max_epochs=2, callbacks=[bar], random_state=0).fit(X[:200], y[:200])
    >>> [cb.n_epochs_ for name, cb in clf.net_.callbacks_ if isinstance(cb, FitProgressBar)]
    [4]
    """

    spans_fit = True  # one bar for every stage, never a fresh copy per stage

    def __init__(self, total_epochs=None, desc="RTL fit", file=None, leave=True):
        self.total_epochs = total_epochs
        self.desc = desc
        self.file = file
        self.leave = leave

    def initialize(self):
        self.n_epochs_ = 0
        self._bar = None
        return self

    def _make_bar(self):
        from tqdm import tqdm

        return tqdm(
            total=self.total_epochs,
            desc=self.desc,
            unit="epoch",
            leave=self.leave,
            file=self.file if self.file is not None else sys.stderr,
            dynamic_ncols=True,
        )

    def on_epoch_end(self, net, **kwargs):
        if self._bar is None:
            self._bar = self._make_bar()
        self.n_epochs_ += 1
        row = net.history[-1]
        postfix = {}
        if "stage" in row:
            postfix["stage"] = row["stage"]
        if "train_loss" in row:
            postfix["loss"] = f"{row['train_loss']:.4f}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)
        if self.total_epochs is not None and self.n_epochs_ >= self.total_epochs:
            self.close()

    def close(self):
        """Close the bar (done automatically after ``total_epochs`` epochs)."""
        if getattr(self, "_bar", None) is not None:
            self._bar.close()
            self._bar = None

    def __getstate__(self):
        # a fitted estimator must pickle: never carry the open bar (it holds a stream)
        state = self.__dict__.copy()
        state["_bar"] = None
        return state
