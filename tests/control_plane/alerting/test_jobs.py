"""The jobs add grammar: a name, a cron schedule and exactly one action."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.errors import ConduitError, ErrorCode
from control_plane.alerting import Job, JobKind


def test_jobs_parse_the_jobs_add_arguments() -> None:
    train = Job.parse("nightly", cron="0  3 * * *", train="specs/fraud.toml")
    assert (train.kind, train.spec, str(train.schedule)) == (JobKind.TRAIN, Path("specs/fraud.toml"), "0 3 * * *")
    assert train.action == "--train specs/fraud.toml"
    assert Job.parse("alerts", cron="*/5 * * * *", evaluate=True).kind is JobKind.EVALUATE
    assert Job.parse("gc", cron="@daily", gc=True).action == "--gc"


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"cron": "*/5 * * * *"}, "exactly one of --train SPEC, --evaluate or --gc, not none"),
        ({"cron": "*/5 * * * *", "evaluate": True, "gc": True}, "not --evaluate and --gc"),
        ({"cron": "*/5 * * * *", "train": "spec.yaml"}, "not a .toml file"),
        ({"cron": "*/5 * * *", "gc": True}, "five fields"),
        ({"cron": "0 */5 * * * *", "gc": True}, "five fields"),
        ({"cron": "61 * * * *", "gc": True}, "cron '61 * * * *'"),
        ({"cron": "@fortnightly", "gc": True}, "unknown name"),
    ],
)
def test_bad_jobs_are_invalid_arguments(arguments: dict[str, object], named: str) -> None:
    with pytest.raises(ConduitError) as caught:
        Job.parse("job", **arguments)  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert named in caught.value.message
