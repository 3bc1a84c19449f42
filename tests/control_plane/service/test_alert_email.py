"""An alert rule notifying by email reaches an SMTP server on loopback: drifted traffic pushed over OTLP, the
control plane's built-in evaluation, and the mail it sends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from contract.client import ControlPlaneClient
from control_plane.alerting import AlertingSettings
from control_plane.app import ControlPlaneServer
from control_plane.settings import ControlPlaneSettings
from tests.clients.test_cli_monitoring import ADMIN_TOKEN, populate
from tests.conftest import TrainedModel
from tests.control_plane.alerting.conftest import SmtpServer, smtp  # noqa: F401 (fixture)

from .conftest import eventually


async def test_a_drift_rule_mails_its_firing(
    tmp_path: Path,
    classifier: TrainedModel,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    settings = ControlPlaneSettings(home=tmp_path / "home", grpc_port=0, admin_token=ADMIN_TOKEN)
    # The relay runs on this machine: loopback has to be allowed for it.
    alerting = AlertingSettings(
        smtp_host=smtp.host, smtp_port=smtp.port, smtp_from="conduit@example.com", evaluate_interval_s=0.2,
        smtp_allow="127.0.0.1/32",
    )  # fmt: skip
    server = ControlPlaneServer(settings, alerting=alerting)
    await server.start()
    try:
        model = tmp_path / "model.onnx"
        model.write_bytes(classifier.onnx)
        # A version trained on a profiled data set, and a push of traffic whose amounts drifted.
        await asyncio.to_thread(populate, server.target, model, np.random.default_rng(2))
        async with ControlPlaneClient.connect(server.target, token=ADMIN_TOKEN) as client:
            await client.create_alert_rule(
                "drifting",
                model="fraud@production",
                when="drift > 0.2",
                notify="email:oncall@example.com",
            )
        await eventually(lambda: len(smtp.messages) >= 1, "the firing mail")
        await asyncio.sleep(1.0)  # a few more evaluations: the alert keeps firing, and is not mailed again
        [(envelope, mail)] = smtp.messages
        assert envelope.rcpt_tos == ["oncall@example.com"] and mail["To"] == "oncall@example.com"
        assert mail["From"] == "conduit@example.com"
        assert "FIRING" in mail["Subject"] and "drifting" in mail["Subject"]
        async with ControlPlaneClient.connect(server.target, token=ADMIN_TOKEN) as client:
            (event,) = await client.alert_history("drifting")
        assert (event.phase, event.delivery, event.channel) == ("firing", "delivered", "email:oncall@example.com")
    finally:
        await server.stop(grace=1.0)
