"""Webhook secrets and destinations through the real API: a webhook whose address is refused whatever DNS says is
refused when created; no answer, listing or audit entry a viewer reads holds a webhook URL's credentials, path or
query, while its fingerprint shows the URL changed; a delivery refused by the outbound policy reads the same for
every reason, and only the control plane's log says why."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from contract.client import ControlPlaneClient
from contract.entities import Role
from contract.outbound import REFUSED
from control_plane.alerting import AlertingSettings
from control_plane.app import ControlPlaneServer
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.settings import ControlPlaneSettings
from tests.clients.test_cli_monitoring import ADMIN_TOKEN, populate
from tests.conftest import TrainedModel
from tests.control_plane.alerting.conftest import WebhookReceiver, webhook  # noqa: F401 (fixture)

from .conftest import Api, StartApi

SECRETS = ("pass-s3cret", "path-s3cret", "query-s3cret")
FIRST = "https://ops:pass-s3cret@hooks.example.com/T0/path-s3cret?token=query-s3cret"
SECOND = "https://ops:pass-s3cret@hooks.example.com/T0/path-s3cret?token=query-s3cret-rotated"


def fingerprint(url: str) -> str:
    return hashlib.sha256(f"webhook:{url}".encode()).hexdigest()[:12]


def create(name: str, url: str) -> cp.CreateAlertRuleRequest:
    return cp.CreateAlertRuleRequest(name=name, model="fraud@production", when="drift > 0.2", notify=f"webhook:{url}")


async def refusal(call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call  # type: ignore[misc]
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return failure.value.details() or ""


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]", "[fd00:ec2::254]", "localhost", "127.1", "0x7f000001"],
)
async def test_a_webhook_to_an_address_that_is_not_public_is_refused_when_created(api: Api, host: str) -> None:
    maintainer = await api.user("max", cp.ROLE_MAINTAINER)
    url = f"http://user:pass-s3cret@{host}:8080/T0/path-s3cret?token=query-s3cret"
    details = await refusal(api.stub.CreateAlertRule(create("inside", url), metadata=maintainer))
    assert "\n" not in details and "CONDUIT_ALERTS_WEBHOOK_ALLOW" in details
    assert not any(secret in details for secret in SECRETS)
    assert (await api.stub.ListAlertRules(cp.ListAlertRulesRequest(), metadata=api.admin)).rules == []
    audit = await api.stub.ListAudit(cp.ListAuditRequest(target_prefix="alert/"), metadata=api.admin)
    assert list(audit.entries) == []


async def test_the_allow_list_lets_a_rule_name_an_on_premises_receiver(
    start_api: StartApi, sqlite_url: str, model_bytes: bytes
) -> None:
    api = await start_api(sqlite_url, alerting=AlertingSettings(webhook_allow="127.0.0.1/32, alerts.corp.test"))
    await api.watched("fraud", model_bytes)
    for name, url in (("lo", "http://127.0.0.1:9/hook"), ("named", "http://localhost:9/hook"), ("corp", FIRST)):
        await api.stub.CreateAlertRule(create(name, url), metadata=api.admin)
    await refusal(api.stub.CreateAlertRule(create("private", "http://10.0.0.1/hook"), metadata=api.admin))
    listed = await api.stub.ListAlertRules(cp.ListAlertRulesRequest(), metadata=api.admin)
    assert [r.name for r in listed.rules] == ["corp", "lo", "named"]


async def test_a_viewer_reads_no_webhook_secret_but_sees_the_url_change(any_api: Api, model_bytes: bytes) -> None:
    stub = any_api.stub
    await any_api.watched("fraud", model_bytes)
    maintainer = await any_api.user("max", cp.ROLE_MAINTAINER)
    viewer = await any_api.user("vera", cp.ROLE_VIEWER)
    answers = [await stub.CreateAlertRule(create("paged", FIRST), metadata=maintainer)]
    answers.append(await stub.DeleteAlertRule(cp.DeleteAlertRuleRequest(name="paged"), metadata=maintainer))
    # The token rotated: the rule is created again with the new URL, then silenced.
    answers.append(await stub.CreateAlertRule(create("paged", SECOND), metadata=maintainer))
    answers.append(await stub.SilenceAlert(cp.SilenceAlertRequest(rule="paged"), metadata=maintainer))
    listed = await stub.ListAlertRules(cp.ListAlertRulesRequest(), metadata=viewer)
    audit = await stub.ListAudit(cp.ListAuditRequest(target_prefix="alert/"), metadata=viewer)
    history = await stub.ListAlertHistory(cp.ListAlertHistoryRequest(), metadata=viewer)
    for message in (*answers, listed, audit, history):
        assert not any(secret in str(message) for secret in SECRETS), message
    assert {r.channel for r in (*answers, *listed.rules)} == {"webhook:https://hooks.example.com/…"}

    entries = list(reversed(audit.entries))
    assert [e.action for e in entries] == ["CreateAlertRule", "DeleteAlertRule", "CreateAlertRule", "SilenceAlert"]
    states = [json.loads(e.after_json or e.before_json) for e in entries]
    assert {s["channel"] for s in states} == {"webhook:https://hooks.example.com/…"}
    assert [s["channel_fingerprint"] for s in states] == [
        fingerprint(FIRST), fingerprint(FIRST), fingerprint(SECOND), fingerprint(SECOND),
    ]  # fmt: skip
    assert fingerprint(FIRST) != fingerprint(SECOND)


async def test_a_refused_delivery_reads_the_same_to_viewers_and_the_log_alone_says_why(
    tmp_path: Path,
    classifier: TrainedModel,
    webhook: WebhookReceiver,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    home = tmp_path / "home"
    settings = ControlPlaneSettings(home=home, grpc_port=0, admin_token=ADMIN_TOKEN)
    # The rule is created while loopback is allowed; the operator then takes that back.
    allowing = ControlPlaneServer(settings, alerting=AlertingSettings(webhook_allow="127.0.0.1/32"))
    await allowing.start()
    model = tmp_path / "model.onnx"
    model.write_bytes(classifier.onnx)
    try:
        # The model first (a rule on a model the registry does not have is refused), with drifted traffic.
        await asyncio.to_thread(populate, allowing.target, model, np.random.default_rng(2))
        async with ControlPlaneClient.connect(allowing.target, token=ADMIN_TOKEN) as admin:
            await admin.create_alert_rule(
                "drifting", model="fraud@production", when="drift > 0.2", notify=f"webhook:{webhook.url}"
            )
    finally:
        await allowing.stop(grace=1.0)

    server = ControlPlaneServer(settings, alerting=AlertingSettings(evaluate_interval_s=0.2))
    caplog.set_level(logging.INFO)
    await server.start()
    try:
        async with ControlPlaneClient.connect(server.target, token=ADMIN_TOKEN) as admin:
            _, token = await admin.create_user("vera", Role.VIEWER)
            viewer = admin.with_token(token)
            deadline = time.monotonic() + 30
            while not (events := await viewer.alert_history("drifting")) or not events[0].delivery:
                assert time.monotonic() < deadline, "no delivery recorded within 30s"
                await asyncio.sleep(0.1)
            [event] = events
            assert (event.phase, event.delivery, event.attempts, event.error) == ("firing", "failed", 1, REFUSED)
            assert event.channel == f"webhook:http://127.0.0.1:{webhook.port}/…"
            runs = await viewer.job_runs("@evaluate")
    finally:
        await server.stop(grace=1.0)
    assert webhook.posts == []
    assert "webhook to http://127.0.0.1:" in caplog.text and "127.0.0.1 is a loopback address" in caplog.text
    assert "s3cret" not in caplog.text and not any("s3cret" in run.log for run in runs)
