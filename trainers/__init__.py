"""Conduit's trainers: from a file or SQL table to an evaluated, tuned, parity-checked ONNX model.

``trainers.datasets`` reads, versions and profiles data; ``trainers.spec`` parses training specs (their SQL
expressions checked against the allow-list of ``trainers.expressions``); ``train`` runs one;
``trainers.bundled`` ships offline data sets; ``trainers.onnx_export`` converts and checks models.
"""

from trainers._errors import DatasetError, SpecError, TrainingError
from trainers._metrics import LOWER_IS_BETTER
from trainers._parity import ParityError, ParityReport
from trainers._train import PARITY_TOLERANCE, TrainingResult, train
from trainers.spec import TrainingSpec, describe_estimators, load_spec, parse_spec

__all__ = [
    "LOWER_IS_BETTER",
    "PARITY_TOLERANCE",
    "DatasetError",
    "ParityError",
    "ParityReport",
    "SpecError",
    "TrainingError",
    "TrainingResult",
    "TrainingSpec",
    "describe_estimators",
    "load_spec",
    "parse_spec",
    "train",
]
