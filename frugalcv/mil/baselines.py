"""MIL baselines on the same bag interface as :class:`frugalcv.mil.MEDMIL` (scikit-learn style).

- :class:`MeanPoolingMIL`: pool each bag's instances (mean or max) into one vector and fit a
  logistic regression on bags: the usual video-level baseline of event detection.
- :class:`miSVM` and :class:`MISVM`: Andrews, Tsochantaridis, Hofmann, "Support Vector Machines
  for Multiple-Instance Learning", NeurIPS 2002. mi-SVM treats the labels of positive-bag
  instances as unknowns and alternates SVM training and relabelling; MI-SVM trains on one
  "witness" per positive bag (its highest-scoring instance) and alternates witness selection and
  SVM training.

``fit(bags, y) -> self``, ``decision_function(bags) -> (B,)``, ``predict(bags) -> (B,)``; bags are
lists of (n_i, D) arrays or a ``frugalcv.data.mil.Bags``; y is 0/1, -1/+1 or bool.

Differences from the paper (Andrews et al.): they solve the mixed-integer programs with the
heuristics below on kernel SVMs; here ``kernel="linear"`` uses LinearSVC (liblinear) for speed and
any other kernel uses ``sklearn.svm.SVC``. Both stop when the labels (mi-SVM) or the witnesses
(MI-SVM) stop changing, or after ``max_iter`` rounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from frugalcv.mil._bags import bag_index, check_bags, check_labels, reduce_bags

__all__ = ["MISVM", "POOLINGS", "MeanPoolingMIL", "miSVM"]

POOLINGS = ("mean", "max")


class _BagEstimator(ClassifierMixin, BaseEstimator):
    """Shared predict/decision plumbing; subclasses set ``scaler_``, ``classes_`` and a scorer."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise ValueError(f"this {type(self).__name__} is not fitted; call fit(bags, y) first")

    def _prepare(self, bags) -> tuple[np.ndarray, np.ndarray]:
        x, offsets = check_bags(bags)
        if hasattr(self, "n_features_in_") and x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"bags have {x.shape[1]} features but the model was fit on {self.n_features_in_}"
            )
        if getattr(self, "scaler_", None) is not None:
            x = self.scaler_.transform(x)
        return x, offsets

    def predict(self, bags) -> np.ndarray:
        """(B,) bag labels in the encoding of ``y`` given to fit."""
        scores = self.decision_function(bags)  # raises if not fitted
        return self.classes_[(scores > 0).astype(int)]


class MeanPoolingMIL(_BagEstimator):
    """Bag classifier on pooled instance features.

    Args:
        pooling: ``"mean"`` or ``"max"`` (element-wise over the bag's instances).
        C: LogisticRegression's inverse regularisation strength.
        standardize: standardise the pooled vectors.
    """

    def __init__(self, *, pooling: str = "mean", C: float = 1.0, standardize: bool = True):
        self.pooling = pooling
        self.C = C
        self.standardize = standardize

    def _pool(self, bags) -> np.ndarray:
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling={self.pooling!r}; valid options are {POOLINGS}")
        x, offsets = check_bags(bags)
        if self.pooling == "mean":
            return np.add.reduceat(x, offsets[:-1], axis=0) / np.diff(offsets)[:, None]
        return np.maximum.reduceat(x, offsets[:-1], axis=0)

    def fit(self, bags, y) -> MeanPoolingMIL:
        z = self._pool(bags)  # (B, D)
        y01, self.classes_ = check_labels(y, len(z))
        self.n_features_in_ = z.shape[1]
        self.scaler_ = StandardScaler().fit(z) if self.standardize else None
        if self.scaler_ is not None:
            z = self.scaler_.transform(z)
        self.classifier_ = LogisticRegression(C=self.C, max_iter=2000).fit(z, y01)
        return self

    def decision_function(self, bags) -> np.ndarray:
        """(B,) bag scores; > 0 means positive."""
        self._check_fitted()
        z = self._pool(bags)
        if z.shape[1] != self.n_features_in_:
            raise ValueError(
                f"bags have {z.shape[1]} features but the model was fit on {self.n_features_in_}"
            )
        if self.scaler_ is not None:
            z = self.scaler_.transform(z)
        return self.classifier_.decision_function(z)


def _make_svm(kernel: str, C: float, gamma: Any, random_state: Any):
    if kernel == "linear":
        return LinearSVC(C=C, random_state=random_state, max_iter=20000)
    if kernel in ("rbf", "poly", "sigmoid"):
        return SVC(C=C, kernel=kernel, gamma=gamma, random_state=random_state)
    raise ValueError(f"unknown kernel={kernel!r}; use 'linear', 'rbf', 'poly' or 'sigmoid'")


class _AndrewsSVM(_BagEstimator):
    def __init__(
        self,
        *,
        C: float = 1.0,
        kernel: str = "linear",
        gamma: Any = "scale",
        max_iter: int = 50,
        standardize: bool = True,
        random_state: Any = None,
    ) -> None:
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.max_iter = max_iter
        self.standardize = standardize
        self.random_state = random_state

    def _start(self, bags, y):
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive int, got {self.max_iter}")
        _make_svm(self.kernel, self.C, self.gamma, None)  # validates kernel before any work
        x, offsets = check_bags(bags)
        y01, self.classes_ = check_labels(y, len(offsets) - 1)
        self.n_features_in_ = x.shape[1]
        self.scaler_ = StandardScaler().fit(x) if self.standardize else None
        if self.scaler_ is not None:
            x = self.scaler_.transform(x)
        return x, offsets, y01

    def _svm(self):
        return _make_svm(self.kernel, self.C, self.gamma, self.random_state)

    def instance_scores(self, bags) -> np.ndarray:
        """(N,) SVM scores of every instance, bag after bag."""
        self._check_fitted()
        x, _ = self._prepare(bags)
        return self.classifier_.decision_function(x)

    def decision_function(self, bags) -> np.ndarray:
        """(B,) bag scores: the max instance score (Andrews et al.'s bag decision)."""
        _, offsets = check_bags(bags)
        return reduce_bags(self.instance_scores(bags), offsets, "max")


class miSVM(_AndrewsSVM):  # noqa: N801  (the literature's name; MISVM is the bag-level one)
    """mi-SVM (Andrews et al. 2002): instance labels of positive bags are latent.

    Start with every positive-bag instance labelled +1 and every negative-bag instance -1. Repeat:
    fit the SVM; relabel each positive-bag instance by the sign of its score; if a positive bag has
    no positive instance left, label its highest-scoring one +1. Stop when the labels are stable.

    Fitted attributes: ``classifier_``, ``scaler_``, ``classes_``, ``instance_labels_`` (N,) in
    {-1, +1}, ``n_iter_``, ``converged_``.
    """

    def fit(self, bags, y) -> miSVM:
        x, offsets, y01 = self._start(bags, y)
        bag_of = bag_index(offsets)
        pos = y01[bag_of] == 1
        labels = np.where(pos, 1, -1)
        self.converged_ = False
        for it in range(1, self.max_iter + 1):
            clf = self._svm().fit(x, labels)
            f = clf.decision_function(x)
            new = np.where(pos, np.where(f > 0, 1, -1), -1)
            for b in np.flatnonzero(y01 == 1):
                sl = slice(offsets[b], offsets[b + 1])
                if not np.any(new[sl] > 0):
                    new[offsets[b] + int(np.argmax(f[sl]))] = 1
            self.n_iter_ = it
            if np.array_equal(new, labels):
                self.converged_ = True
                break
            labels = new
        self.classifier_ = clf
        self.instance_labels_ = labels
        return self


class MISVM(_AndrewsSVM):
    """MI-SVM (Andrews et al. 2002): one witness instance per positive bag.

    Start with each positive bag represented by the mean of its instances. Repeat: fit the SVM on
    every negative-bag instance (-1) and the witnesses (+1); pick as each positive bag's witness
    its highest-scoring instance. Stop when the witnesses are stable.

    Fitted attributes: ``classifier_``, ``scaler_``, ``classes_``, ``witnesses_`` (index of each
    positive bag's witness instance, into the concatenated instances), ``n_iter_``,
    ``converged_``.
    """

    def fit(self, bags, y) -> MISVM:
        x, offsets, y01 = self._start(bags, y)
        bag_of = bag_index(offsets)
        neg_x = x[y01[bag_of] == 0]
        pos_bags = np.flatnonzero(y01 == 1)
        witness_x = np.stack([x[offsets[b] : offsets[b + 1]].mean(0) for b in pos_bags])
        labels = np.concatenate([-np.ones(len(neg_x)), np.ones(len(pos_bags))])
        witnesses = None
        self.converged_ = False
        for it in range(1, self.max_iter + 1):
            clf = self._svm().fit(np.concatenate([neg_x, witness_x]), labels)
            f = clf.decision_function(x)
            new = np.array(
                [offsets[b] + int(np.argmax(f[offsets[b] : offsets[b + 1]])) for b in pos_bags]
            )
            self.n_iter_ = it
            if witnesses is not None and np.array_equal(new, witnesses):
                self.converged_ = True
                break
            witnesses = new
            witness_x = x[witnesses]
        self.classifier_ = clf
        self.witnesses_ = witnesses
        return self
