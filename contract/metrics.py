"""The metrics inference servers push to the control plane, by name and attribute key: the servers' telemetry sends
exactly these, and the control plane's receiver keeps exactly these and ignores every other metric.

- ``conduit.inference.requests`` Sum {model, version, status}: requests by status, ``OK`` or an error code's name.
- ``conduit.inference.duration`` Histogram, seconds {model, version, status}: only the ``OK`` series is kept, as the
  latency histogram (failures are counted, their durations are not what a latency objective is about).
- ``conduit.sketch.bin`` Sum {model, version, feature, bin}: values of a numeric feature per bin of the training
  profile (``"0"``…``"k-1"``), ``"below"``/``"above"`` its edges, or ``"missing"``.
- ``conduit.sketch.category`` Sum {model, version, feature, category}: values of a categorical feature: a top
  category of the profile, ``"__other__"``, ``"missing"``, or ``"__unseen__"`` (a value the training data never
  had: sent when the profile lists every category it had).
- Feature ``@prediction`` is the model's output: classifiers send their class index as a category, regressors bin
  their prediction over the target column's edges.

The per-stage histograms (``conduit.inference.queue.duration``, ``…compute.duration``, ``…batch.size``) are not kept:
they explain a latency rather than describe the service, and Prometheus or any OTLP collector keeps them.
"""

from __future__ import annotations

__all__ = [
    "ABOVE",
    "BELOW",
    "CATEGORICAL",
    "DURATION",
    "INSTANCE",
    "MAX_BINS",
    "MISSING",
    "NUMERIC",
    "OK",
    "OTHER",
    "PREDICTION",
    "REQUESTS",
    "SKETCH_BIN",
    "SKETCH_CATEGORY",
    "SKETCH_KINDS",
    "UNSEEN",
]

REQUESTS = "conduit.inference.requests"
DURATION = "conduit.inference.duration"
SKETCH_BIN = "conduit.sketch.bin"
SKETCH_CATEGORY = "conduit.sketch.category"

INSTANCE = "service.instance.id"
"""Resource attribute naming the exporting process: cumulative series are told apart by it."""
OK = "OK"
PREDICTION = "@prediction"
BELOW, ABOVE, MISSING, OTHER, UNSEEN = "below", "above", "missing", "__other__", "__unseen__"

NUMERIC, CATEGORICAL = "numeric", "categorical"
SKETCH_KINDS = {SKETCH_BIN: NUMERIC, SKETCH_CATEGORY: CATEGORICAL}
"""Sketch metric -> the kind of feature it counts (the profile's ``kind`` names)."""
MAX_BINS = 1000
"""As many bins as a stored profile may have."""
