"""The --when, --notify and --model grammar: typed values, canonical text, and errors that name the fault."""

from __future__ import annotations

import pytest

from contract.errors import ConduitError, ErrorCode
from control_plane.alerting import (
    AlertRule,
    DriftAbove,
    DriftScope,
    Email,
    ErrorRateAbove,
    Log,
    NoTraffic,
    NotReady,
    P99Above,
    Webhook,
    describe_window,
    format_duration,
    parse_channel,
    parse_condition,
    parse_duration,
    parse_model_target,
)


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        ("p99_ms > 50 for 2m", P99Above(50.0, 120), "p99_ms > 50 for 2m"),
        ("p99_ms>12.5ms for 90s", P99Above(12.5, 90), "p99_ms > 12.5 for 90s"),
        ("p99_ms > 1e3", P99Above(1000.0), "p99_ms > 1000"),
        ("error_rate > 1% for 1m", ErrorRateAbove(0.01, 60), "error_rate > 1% for 1m"),
        ("error_rate > 7%", ErrorRateAbove(0.07), "error_rate > 7%"),
        ("error_rate > 0.5% for 3600s", ErrorRateAbove(0.005, 3600), "error_rate > 0.5% for 1h"),
        # A drift rule's window is always written out: a stored rule never depends on a default.
        ("drift > 0.2", DriftAbove(0.2), "drift > 0.2 over 10m"),
        ("drift(any) > 0.2", DriftAbove(0.2, DriftScope.ANY), "drift > 0.2 over 10m"),
        ("drift(all) > 0.25", DriftAbove(0.25, DriftScope.ALL), "drift(all) > 0.25 over 10m"),
        ("drift > 0.2 over 15m", DriftAbove(0.2, DriftScope.ANY, 900), "drift > 0.2 over 15m"),
        ("drift(all)>0.3 over 3600s", DriftAbove(0.3, DriftScope.ALL, 3600), "drift(all) > 0.3 over 1h"),
        ("no_traffic for 5m", NoTraffic(300), "no_traffic for 5m"),
        ("  no_traffic   for 1d ", NoTraffic(86400), "no_traffic for 1d"),
        ("not_ready", NotReady(), "not_ready"),
        ("not_ready for 30s", NotReady(30), "not_ready for 30s"),
    ],
)
def test_conditions_parse_to_typed_values_and_print_canonically(text: str, expected: object, canonical: str) -> None:
    condition = parse_condition(text)
    assert condition == expected
    assert str(condition) == canonical
    assert parse_condition(str(condition)) == condition


@pytest.mark.parametrize("percent", ["0.1", "0.07", "12.345", "99.9", "0.1234567890123456789", "3"])
def test_error_rates_round_trip_exactly(percent: str) -> None:
    condition = parse_condition(f"error_rate > {percent}%")
    assert parse_condition(str(condition)) == condition
    assert str(parse_condition(str(condition))) == str(condition)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "empty condition"),
        ("p95_ms > 50", "unknown metric 'p95_ms'"),
        ("P99_MS > 50", "unknown metric 'P99_MS'"),
        ("p99_ms >= 50", "only '>' is supported"),
        ("p99_ms < 50", "only '>' is supported"),
        ("p99_ms", "needs a comparison"),
        ("p99_ms >", "needs a number, found nothing"),
        ("p99_ms > fast", "needs a number, found 'fast'"),
        ("p99_ms > -5", "needs a number, found '-'"),
        ("p99_ms > 0", "positive number of milliseconds"),
        ("p99_ms > 5%", "'5%': p99_ms takes"),
        ("p99_ms > 50 for", "'for' needs a duration"),
        ("p99_ms > 50 for 2", "'2' is not a duration"),
        ("p99_ms > 50 for 2w", "'2w' is not a duration"),
        ("p99_ms > 50 for 8d", "longer than seven days"),
        ("p99_ms > 50 during 2m", "expected 'for DURATION'"),
        ("p99_ms > 50 for 2m now", "unexpected 'now'"),
        ("error_rate > 1", "error_rate takes a number with '%'"),
        ("error_rate > 100%", "from 0% to below 100%"),
        ("drift > 0.2 for 5m", "drift takes no 'for': write 'over 10m'"),
        ("drift > 0.2 over", "'over' needs a duration"),
        ("drift > 0.2 over 30s", "at least 1m"),
        ("drift > 0.2 over 8d", "longer than seven days"),
        ("drift > 0.2 during 5m", "expected 'over DURATION'"),
        ("drift > 0.2 over 5m now", "unexpected 'now'"),
        ("drift(some) > 0.2", "drift(any) or drift(all)"),
        ("drift > 0", "positive PSI"),
        ("no_traffic", "no_traffic needs a window"),
        ("no_traffic for 0s", "longer than 0s"),
        ("no_traffic > 5", "expected 'for DURATION'"),
        ("not_ready > 1", "expected 'for DURATION'"),
    ],
)
def test_bad_conditions_are_invalid_arguments_naming_the_fault(text: str, named: str) -> None:
    with pytest.raises(ConduitError) as caught:
        parse_condition(text)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert named in caught.value.message


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("2m", 120), ("1h", 3600), ("1d", 86400), ("90s", 90)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


def test_channels_parse_and_print_back() -> None:
    url = "https://hooks.example.com/services/T0/B0/secret?x=1"
    assert parse_channel(f"webhook:{url}") == Webhook(url)
    assert str(parse_channel(f"webhook:{url}")) == f"webhook:{url}"
    assert Webhook(url).redacted == "webhook:https://hooks.example.com/…"
    assert Webhook("http://user:pw@10.0.0.1:8080/a").redacted == "webhook:http://10.0.0.1:8080/…"
    assert parse_channel("email:oncall@example.com") == Email("oncall@example.com")
    assert str(Email("oncall@example.com")) == "email:oncall@example.com"
    assert parse_channel("log") == Log()
    assert str(Log()) == "log"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("slack:#ops", "unknown channel"),
        ("webhook", "unknown channel"),
        ("webhook:ftp://example.com/x", "http:// or https://"),
        ("webhook:https:///nohost", "http:// or https://"),
        ("webhook:https://example.com/a b", "must not contain spaces"),
        ("webhook:https://example.com/a\x00b", "control characters"),
        ("webhook:https://example.com:99999/a", "port must be a number"),
        ("email:nobody", "one plain address"),
        ("email:Ops <ops@example.com>", "one plain address"),
        ("email:a@b@example.com", "one plain address"),
        ("email:a@localhost", "one plain address"),
    ],
)
def test_bad_channels_are_invalid_arguments(text: str, named: str) -> None:
    with pytest.raises(ConduitError) as caught:
        parse_channel(text)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert named in caught.value.message


def test_a_webhooks_secret_is_never_echoed() -> None:
    with pytest.raises(ConduitError) as caught:
        parse_channel("webhook:https://ops:pw-s3cret@example.com:99999/path-s3cret?token=q-s3cret")
    assert "s3cret" not in caught.value.message
    notify = "webhook:https://ops:pw-s3cret@example.com/path-s3cret?token=q-s3cret"
    rule = AlertRule.parse("paged", model="fraud", when="not_ready", notify=notify)
    assert "s3cret" not in repr(rule) and str(rule.channel) == notify


def test_rules_parse_the_alerts_add_arguments() -> None:
    rule = AlertRule.parse("slow", model="fraud@production", when="p99_ms > 50 for 2m", notify="log")
    assert rule == AlertRule("slow", "fraud", "production", P99Above(50.0, 120), Log())
    assert rule.target == "fraud@production"
    assert parse_model_target("fraud") == ("fraud", None)
    for bad, named in [("fraud:3", "not a pinned version"), ("fraud@7", "all digits"), ("bad name", "model name")]:
        with pytest.raises(ConduitError) as caught:
            parse_model_target(bad)
        assert caught.value.code is ErrorCode.INVALID_ARGUMENT
        assert named in caught.value.message
    with pytest.raises(ConduitError, match="alert rule name"):
        AlertRule.parse("no spaces allowed", model="fraud", when="not_ready", notify="log")


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("p99_ms > 50", "1m"),
        ("p99_ms > 50 for 10s", "1m"),
        ("error_rate > 5% for 5m", "5m"),
        ("drift > 0.2", "10m"),
        ("drift > 0.2 over 1h", "1h"),
        ("no_traffic for 15m", "15m"),
        ("not_ready", "latest"),
        ("not_ready for 30s", "30s"),
    ],
)
def test_every_condition_has_a_window(text: str, window: str) -> None:
    assert describe_window(parse_condition(text)) == window
