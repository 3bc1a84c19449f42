"""Deployments, rollbacks, pool generations and assignments, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from contract.entities import ArtifactRef, DeploymentSpec, ModelVersion
from contract.errors import ErrorCode
from control_plane.store import SqlStore

Register = Callable[..., ModelVersion]
ErrorOf = Callable[[Callable[[], object]], ErrorCode]


def _ref(version: ModelVersion) -> ArtifactRef:
    return ArtifactRef(version.version, version.sha256, version.size_bytes)


def test_deploy_by_alias_follows_the_alias(store: SqlStore, register: Register) -> None:
    v1 = register("fraud", aliases=("production",))
    deployment = store.deploy(DeploymentSpec("default", "fraud", alias="production"), actor="bob")
    assert (deployment.pool, deployment.model, deployment.alias, deployment.version) == (
        "default",
        "fraud",
        "production",
        None,
    )
    assert deployment.active and deployment.resolved_version == 1 and deployment.created_by == "bob"
    assigned = store.assignments("default")
    assert [(a.model, a.primary, a.canary) for a in assigned.models] == [("fraud", _ref(v1), None)]

    v2 = register("fraud", aliases=("production",))
    assert store.assignments("default").models[0].primary == _ref(v2)
    [listed] = store.list_deployments(pool="default", model=None, history=False, page_size=0, page_token="").items
    assert listed.resolved_version == 2


def test_pinned_deployment_with_a_canary(store: SqlStore, register: Register) -> None:
    v1, v2 = register("fraud"), register("fraud")
    deployment = store.deploy(
        DeploymentSpec("default", "fraud", version=1, canary_version=2, canary_percent=12.5), actor="bob"
    )
    assert (deployment.version, deployment.canary_version, deployment.canary_percent) == (1, 2, 12.5)
    [assignment] = store.assignments("default").models
    assert (assignment.primary, assignment.canary, assignment.canary_percent) == (_ref(v1), _ref(v2), 12.5)
    assert store.assignments("other").models == () and store.assignments("other").generation == 0


def test_generation_grows_with_each_change_of_what_a_pool_serves(store: SqlStore, register: Register) -> None:
    register("fraud", aliases=("production",))
    register("churn", aliases=("production",))
    assert store.generation("default") == 0
    store.deploy(DeploymentSpec("default", "fraud", alias="production"), actor="a")
    store.deploy(DeploymentSpec("staging", "churn", alias="production"), actor="a")
    assert (store.generation("default"), store.generation("staging")) == (1, 1)

    # Moving the alias a pool follows changes that pool only.
    register("fraud")
    store.set_alias("fraud", "production", 2, actor="a")
    assert (store.generation("default"), store.generation("staging")) == (2, 1)
    # Aliases nobody follows, and versions registered without one, change nothing.
    store.set_alias("fraud", "shadow", 2, actor="a")
    register("fraud")
    register("churn")
    store.set_alias("churn", "other", 2, actor="a")
    assert (store.generation("default"), store.generation("staging")) == (2, 1)
    # Registering straight onto a followed alias does.
    register("churn", aliases=("production",))
    assert (store.generation("default"), store.generation("staging")) == (2, 2)
    assert store.assignments("staging").generation == 2

    store.deploy(DeploymentSpec("default", "fraud", version=1), actor="a")
    store.rollback("default", "fraud", actor="a")
    assert store.generation("default") == 4


def test_rollback_toggles_and_keeps_the_history(store: SqlStore, register: Register, error_code: ErrorOf) -> None:
    register("fraud")
    register("fraud")
    first = store.deploy(DeploymentSpec("default", "fraud", version=1), actor="a")
    assert error_code(lambda: store.rollback("default", "fraud", actor="a")) is ErrorCode.FAILED_PRECONDITION
    second = store.deploy(DeploymentSpec("default", "fraud", version=2), actor="a")

    back = store.rollback("default", "fraud", actor="a")
    assert back.version == 1 and back.active and back.id not in (first.id, second.id)
    forth = store.rollback("default", "fraud", actor="a")
    assert forth.version == 2
    assert store.assignments("default").models[0].primary.version == 2

    history = store.list_deployments(pool="default", model="fraud", history=True, page_size=0, page_token="").items
    assert [(d.version, d.active) for d in history] == [(2, True), (1, False), (2, False), (1, False)]
    assert error_code(lambda: store.rollback("default", "ghost", actor="a")) is ErrorCode.NOT_FOUND
    assert error_code(lambda: store.rollback("nowhere", "fraud", actor="a")) is ErrorCode.NOT_FOUND
    register("idle")
    store.deploy(DeploymentSpec("other", "idle", version=1), actor="a")
    assert error_code(lambda: store.rollback("default", "idle", actor="a")) is ErrorCode.NOT_FOUND


def test_undeploy_removes_the_model_and_can_be_rolled_back(
    store: SqlStore, register: Register, error_code: ErrorOf
) -> None:
    register("fraud")
    register("churn")
    store.deploy(DeploymentSpec("default", "fraud", version=1), actor="a")
    store.deploy(DeploymentSpec("default", "churn", version=1), actor="a")
    removed = store.deploy(DeploymentSpec("default", "fraud", undeploy=True), actor="a")
    assert removed.undeployed and removed.resolved_version is None
    assert [a.model for a in store.assignments("default").models] == ["churn"]
    active = store.list_deployments(pool="default", model=None, history=False, page_size=0, page_token="").items
    assert [d.model for d in active] == ["churn"]
    assert error_code(lambda: store.deploy(DeploymentSpec("default", "fraud", undeploy=True), actor="a")) is (
        ErrorCode.NOT_FOUND
    )
    back = store.rollback("default", "fraud", actor="a")
    assert back.version == 1 and not back.undeployed
    assert [a.model for a in store.assignments("default").models] == ["churn", "fraud"]

    assert store.rollback("default", "fraud", actor="a").undeployed
    store.archive_model("fraud", actor="a")
    # Rolling back now would deploy an archived model.
    assert error_code(lambda: store.rollback("default", "fraud", actor="a")) is ErrorCode.FAILED_PRECONDITION


def test_deploy_errors(store: SqlStore, register: Register, error_code: ErrorOf) -> None:
    register("fraud", aliases=("production",))

    def deploy(**fields: object) -> ErrorCode:
        spec = DeploymentSpec(**{"pool": "default", "model": "fraud", **fields})  # type: ignore[arg-type]
        return error_code(lambda: store.deploy(spec, actor="a"))

    assert deploy() is ErrorCode.INVALID_ARGUMENT
    assert deploy(alias="production", version=1) is ErrorCode.INVALID_ARGUMENT
    assert deploy(version=1, canary_version=1, canary_percent=100.5) is ErrorCode.INVALID_ARGUMENT
    assert deploy(version=1, canary_version=1, canary_percent=10) is ErrorCode.INVALID_ARGUMENT
    assert deploy(version=1, canary_version=1, canary_percent=-1) is ErrorCode.INVALID_ARGUMENT
    assert deploy(version=1, canary_percent=10) is ErrorCode.INVALID_ARGUMENT
    assert deploy(undeploy=True, version=1) is ErrorCode.INVALID_ARGUMENT
    assert deploy(version=1, pool="bad pool") is ErrorCode.INVALID_ARGUMENT
    assert deploy(version=2) is ErrorCode.NOT_FOUND
    assert deploy(alias="staging") is ErrorCode.NOT_FOUND
    assert deploy(version=1, canary_version=5, canary_percent=5) is ErrorCode.NOT_FOUND
    assert deploy(version=1, model="ghost") is ErrorCode.NOT_FOUND
    store.create_model("empty", "", actor="a")
    store.archive_model("empty", actor="a")
    assert deploy(version=1, model="empty") is ErrorCode.FAILED_PRECONDITION
    # Nothing was deployed by any refused call.
    assert store.generation("default") == 0
    assert store.list_deployments(pool=None, model=None, history=True, page_size=0, page_token="").items == []


def test_deployed_models_and_followed_aliases_are_protected(
    store: SqlStore, register: Register, error_code: ErrorOf
) -> None:
    register("fraud", aliases=("production", "staging"))
    store.deploy(DeploymentSpec("default", "fraud", alias="production"), actor="a")
    assert error_code(lambda: store.archive_model("fraud", actor="a")) is ErrorCode.FAILED_PRECONDITION
    assert error_code(lambda: store.delete_alias("fraud", "production", actor="a")) is ErrorCode.FAILED_PRECONDITION
    assert store.delete_alias("fraud", "staging", actor="a") == 1

    store.deploy(DeploymentSpec("default", "fraud", version=1), actor="a")
    assert store.delete_alias("fraud", "production", actor="a") == 1
    # The earlier deployment followed the deleted alias: rolling back to it would serve nothing.
    assert error_code(lambda: store.rollback("default", "fraud", actor="a")) is ErrorCode.FAILED_PRECONDITION
    store.deploy(DeploymentSpec("default", "fraud", undeploy=True), actor="a")
    assert store.archive_model("fraud", actor="a").archived


def test_list_deployments_filters_and_pages(store: SqlStore, register: Register, error_code: ErrorOf) -> None:
    for model in ["fraud", "churn"]:
        register(model)
        register(model)
    for pool in ["a", "b", "c"]:
        for model in ["fraud", "churn"]:
            store.deploy(DeploymentSpec(pool, model, version=1), actor="x")
            store.deploy(DeploymentSpec(pool, model, version=1, canary_version=2, canary_percent=1), actor="x")

    def everything(**filters: object) -> list[int]:
        ids, token = [], ""
        while True:
            page = store.list_deployments(page_size=4, page_token=token, **filters)  # type: ignore[arg-type]
            ids += [d.id for d in page.items]
            if not (token := page.next_token):
                return ids

    history = everything(pool=None, model=None, history=True)
    assert len(history) == 12 and history == sorted(history, reverse=True)
    active = everything(pool=None, model=None, history=False)
    assert len(active) == 6
    assert len(everything(pool="b", model=None, history=False)) == 2
    assert len(everything(pool="b", model="churn", history=True)) == 2
    assert everything(pool="zzz", model=None, history=True) == []
    assert (
        error_code(lambda: store.list_deployments(pool=None, model=None, history=True, page_size=1, page_token="x"))
        is ErrorCode.INVALID_ARGUMENT
    )


@pytest.mark.parametrize("page_size", [0, 1000, 5000])
def test_page_size_defaults_and_caps(store: SqlStore, register: Register, page_size: int) -> None:
    register("fraud")
    store.deploy(DeploymentSpec("default", "fraud", version=1), actor="x")
    page = store.list_deployments(pool=None, model=None, history=True, page_size=page_size, page_token="")
    assert len(page.items) == 1 and page.next_token == ""


def test_rollback_of_a_pool_following_a_moved_alias_pins_the_version_it_left(
    store: SqlStore, register: Register, error_code: ErrorOf
) -> None:
    register("fraud", aliases=("production",))
    register("fraud")
    store.deploy(DeploymentSpec("default", "fraud", alias="production"), actor="a")
    store.deploy(DeploymentSpec("staging", "fraud", alias="production"), actor="a")
    # Nothing moved and nothing came before: there is nothing to return to.
    assert error_code(lambda: store.rollback("default", "fraud", actor="a")) is ErrorCode.FAILED_PRECONDITION

    store.set_alias("fraud", "production", 2, actor="a")
    assert store.assignments("default").models[0].primary.version == 2
    back = store.rollback("default", "fraud", actor="a")
    assert (back.alias, back.version, back.resolved_version) == (None, 1, 1)
    assert store.assignments("default").models[0].primary.version == 1
    # Only this pool went back; the alias and the other pool following it did not move.
    assert store.get_version("fraud", alias="production").version == 2
    assert store.assignments("staging").models[0].primary.version == 2

    forth = store.rollback("default", "fraud", actor="a")
    assert (forth.alias, forth.resolved_version) == ("production", 2)
    # Setting the alias to where it already points is not a move.
    store.set_alias("fraud", "production", 2, actor="a")
    assert store.rollback("default", "fraud", actor="a").version == 1


def test_promoting_the_canary_by_moving_the_alias_ends_the_split(
    store: SqlStore, register: Register, error_code: ErrorOf
) -> None:
    register("fraud", aliases=("production",))
    register("fraud")
    store.deploy(DeploymentSpec("default", "fraud", alias="production", canary_version=2, canary_percent=10), actor="a")
    [split] = store.assignments("default").models
    assert (split.primary.version, split.canary and split.canary.version, split.canary_percent) == (1, 2, 10)
    store.set_alias("fraud", "production", 2, actor="a")
    [promoted] = store.assignments("default").models
    assert (promoted.primary.version, promoted.canary, promoted.canary_percent) == (2, None, 0.0)
    pinned_onto_itself = DeploymentSpec("default", "fraud", version=2, canary_version=2, canary_percent=5)
    assert error_code(lambda: store.deploy(pinned_onto_itself, actor="a")) is ErrorCode.INVALID_ARGUMENT


def test_refusing_unseen_categories_is_the_deployments_and_reaches_its_assignment(
    store: SqlStore, register: Register, error_code: ErrorOf
) -> None:
    register("fraud")
    register("fraud")
    scored = store.deploy(DeploymentSpec("default", "fraud", version=1), actor="a")
    assert scored.unseen_categories == "score" and store.assignments("default").models[0].unseen_categories == "score"
    refusing = store.deploy(DeploymentSpec("default", "fraud", version=1, unseen_categories="refuse"), actor="a")
    assert refusing.unseen_categories == "refuse"
    assigned = store.assignments("default")
    # Only the option changed: the generation still grows, so following servers apply it.
    assert assigned.models[0].unseen_categories == "refuse" and assigned.generation == 2

    # A rollback brings back the option with the rest of the earlier deployment.
    assert store.rollback("default", "fraud", actor="a").unseen_categories == "score"
    assert store.rollback("default", "fraud", actor="a").unseen_categories == "refuse"
    # A pool following an alias that moved is pinned where it was, with its option kept.
    store.set_alias("fraud", "production", 1, actor="a")
    store.deploy(DeploymentSpec("default", "fraud", alias="production", unseen_categories="refuse"), actor="a")
    store.set_alias("fraud", "production", 2, actor="a")
    pinned = store.rollback("default", "fraud", actor="a")
    assert (pinned.version, pinned.unseen_categories) == (1, "refuse")
    history = store.list_deployments(pool="default", model="fraud", history=True, page_size=0, page_token="").items
    assert [d.unseen_categories for d in history] == ["refuse", "refuse", "refuse", "score", "refuse", "score"]

    undeploy = DeploymentSpec("default", "fraud", undeploy=True, unseen_categories="refuse")
    assert error_code(lambda: store.deploy(undeploy, actor="a")) is ErrorCode.INVALID_ARGUMENT
