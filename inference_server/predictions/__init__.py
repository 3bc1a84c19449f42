"""Sampled prediction logging: a share of the answered requests (inputs, outputs, model version, time) as Parquet
files, in a local directory or uploaded to the control plane, for analysis and joining with labels."""

from inference_server.predictions._logger import PredictionLogger
from inference_server.predictions._parquet import LogFile, describe, frames, write_parquet
from inference_server.predictions._sampler import PredictionSampler, Sample
from inference_server.predictions._sinks import LocalSink, Sink, Uploader, UploadSink

__all__ = [
    "LocalSink",
    "LogFile",
    "PredictionLogger",
    "PredictionSampler",
    "Sample",
    "Sink",
    "UploadSink",
    "Uploader",
    "describe",
    "frames",
    "write_parquet",
]
