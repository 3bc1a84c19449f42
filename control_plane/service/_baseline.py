"""The drift baseline of a model version, in one place for the monitoring reports and the alert evaluation: the
profile of the rows it was trained on (its ``profile.json`` attachment, which carries its spec's target and derived
columns), else the profile of the data set version its lineage names."""

from __future__ import annotations

import json
import logging

from contract.entities import TRAINING_PROFILE, ModelVersion, TrainingProfile
from contract.errors import ConduitError, ErrorCode
from control_plane.artifacts import ArtifactStore
from control_plane.monitoring import Baseline
from control_plane.store import AbstractStore

__all__ = ["version_baseline"]

log = logging.getLogger(__name__)


def version_baseline(store: AbstractStore, artifacts: ArtifactStore, version: ModelVersion) -> Baseline | None:
    """The profile ``version``'s served inputs and predictions are compared with; None when it has none (blocking:
    call it from a worker thread).

    Raises:
        ConduitError: UNAVAILABLE when the database or the artifact store cannot be reached.
    """
    lineage = version.lineage
    attachment = next((a for a in version.attachments if a.name == TRAINING_PROFILE), None)
    try:
        if attachment is not None:
            content = b"".join(artifacts.read(attachment.sha256))
            try:
                training = TrainingProfile.from_json(json.loads(content))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                # Registered by hand, and not a profile: no baseline rather than the data set's, whose target differs.
                log.warning(
                    "%s:%d has no drift baseline: %s is not a profile (%s)",
                    version.model,
                    version.version,
                    TRAINING_PROFILE,
                    exc,
                )
                return None
            columns = {column.name: column for column in training.profile.columns}
            return Baseline(lineage.dataset, lineage.dataset_version, columns, training.target)
        if not lineage.dataset or not lineage.dataset_version:
            return None
        return Baseline.of(store.get_dataset(lineage.dataset, lineage.dataset_version))
    except ConduitError as exc:
        # Lineage is free text at registration: it may name a data set never imported, or not even a valid one.
        if exc.code in (ErrorCode.NOT_FOUND, ErrorCode.INVALID_ARGUMENT):
            return None
        raise
