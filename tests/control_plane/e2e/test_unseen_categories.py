"""Refusing unseen categories through the control plane: a model trained on the credit data's categorical columns,
deployed with `conduit deploy --unseen-categories refuse`, is served by a real `conduit serve --control-plane` that
answers INVALID_ARGUMENT naming the input for a city the training data never had and scores the known ones; deployed
again without the option, the same server scores the unseen city too."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from clients import ConduitError, ErrorCode, InferenceClient
from clients.training import fetch_dataset, import_frame, register_result
from contract.client import SyncControlPlaneClient
from trainers import bundled, parse_spec, train

from .conftest import ADMIN_TOKEN, CALLER, CREDIT_SPEC, Cluster, eventually

UNSEEN_CITY = "Atlantis"


def test_a_deployment_refusing_unseen_categories_reaches_its_following_server(
    start_cluster: Callable[[str], Cluster],
) -> None:
    cluster = start_cluster("")
    with SyncControlPlaneClient.connect(cluster.control_plane.address, token=ADMIN_TOKEN) as client:
        import_frame(client, bundled.load("credit"), "credit", source="bundled:credit", target="default")
        frame, stored = fetch_dataset(client, "credit", "")
        result = train(parse_spec(CREDIT_SPEC), frame, dataset_version=stored.version)
        register_result(client, result, model="credit", aliases=["production"])
    known = {str(city) for city in np.ravel(result.test_inputs["city"])}
    assert UNSEEN_CITY not in known

    deployed = cluster.cli("deploy", "credit@production", "--unseen-categories", "refuse")
    assert "refusing unseen categories" in deployed.stdout
    listed = cluster.cli("deploy", "list", "--json")
    assert [d["unseen_categories"] for d in json.loads(listed.stdout)] == ["refuse"]
    assert "UNSEEN" in cluster.cli("deploy", "list").stdout.splitlines()[0]

    server = cluster.serve()
    rows = {name: values[:4].copy() for name, values in result.test_inputs.items()}
    with InferenceClient(server.address, metadata=CALLER, timeout=30) as inference:
        eventually(lambda: inference.model_ready("credit"), timeout=60, what="credit loaded")
        assert len(inference.infer("credit", rows).outputs["label"]) == 4  # known cities are scored
        rows["city"][2, 0] = UNSEEN_CITY
        with pytest.raises(ConduitError) as refused:
            inference.infer("credit", rows)
        assert refused.value.code is ErrorCode.INVALID_ARGUMENT
        assert "'city'" in refused.value.message and repr(UNSEEN_CITY) in refused.value.message

        # Deployed again with the default: the server reloads the version and scores the unseen city.
        cluster.cli("deploy", "credit@production")

        def scored() -> bool:
            try:
                return len(inference.infer("credit", rows).outputs["label"]) == 4
            except ConduitError as exc:
                assert exc.code is ErrorCode.INVALID_ARGUMENT
                return False

        eventually(scored, timeout=60, what="the unseen city scored")
    history = json.loads(cluster.cli("deploy", "list", "--history", "--json").stdout)
    assert [d["unseen_categories"] for d in history] == ["score", "refuse"]
