"""The jobs add grammar: a name, a cron schedule and exactly one action."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from contract.entities import ImportSpec
from contract.errors import ConduitError, ErrorCode
from control_plane.alerting import ImportSettings, Job, JobKind, import_argv, import_environment


def test_jobs_parse_the_jobs_add_arguments() -> None:
    train = Job.parse("nightly", cron="0  3 * * *", train="specs/fraud.toml")
    assert (train.kind, train.spec, str(train.schedule)) == (JobKind.TRAIN, Path("specs/fraud.toml"), "0 3 * * *")
    assert train.action == "--train specs/fraud.toml"
    assert Job.parse("alerts", cron="*/5 * * * *", evaluate=True).kind is JobKind.EVALUATE
    assert Job.parse("gc", cron="@daily", gc=True).action == "--gc"
    feed = Job.parse("feed", cron="0 * * * *", imports="jobs/feed.json")
    assert (feed.kind, feed.action) == (JobKind.IMPORT, "--import jobs/feed.json")
    with pytest.raises(ValueError, match="needs a spec"):
        Job("feed", feed.schedule, JobKind.IMPORT)


def test_import_settings_keep_the_control_planes_secrets_from_jobs() -> None:
    settings = ImportSettings(allow="127.0.0.1/32", env="API_TOKEN, PARTNER_KEY")
    assert settings.env == ("API_TOKEN", "PARTNER_KEY")
    spec = ImportSpec("s3://bucket/key.csv", headers=(("X-Api-Key", "env:PARTNER_KEY"),), name="d")
    environ = {"PARTNER_KEY": "k", "AWS_ACCESS_KEY_ID": "id", "CONDUIT_CP_DB": "postgresql://u:pw@db/x", "OTHER": "o"}
    assert import_environment(spec, settings, environ) == {"PARTNER_KEY": "k", "AWS_ACCESS_KEY_ID": "id"}
    for name in ("CONDUIT_CP_DB", "AWS_SECRET_ACCESS_KEY", "CONDUIT_ADMIN_TOKEN", "bad-name"):
        with pytest.raises(ValidationError, match="cannot be given to an import job"):
            ImportSettings(env=name)
    with pytest.raises(ConduitError, match="env:OTHER is not among"):
        import_environment(ImportSpec("https://h/x", headers=(("A", "env:OTHER"),)), settings, environ)
    assert import_argv(("conduit",), settings)[-2:] == ("--outbound-allow", "127.0.0.1/32")


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"cron": "*/5 * * * *"}, "exactly one of --train SPEC, --import URL, --evaluate or --gc, not none"),
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
