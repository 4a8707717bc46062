"""CloudWatch that evaluates its alarms.

moto stores metric alarms and never evaluates them. Here every metric alarm in a region with
`alarm_evaluation` on is evaluated once per period, as CloudWatch does ("Evaluating an
alarm", CloudWatch User Guide): the statistic of each of the last `EvaluationPeriods`
complete periods, `DatapointsToAlarm` of them breaching for ALARM, missing periods treated
as `TreatMissingData` says. A state change is stamped with CloudWatch's own time and
delivered the ways AWS delivers it: the "CloudWatch Alarm State Change" event on the
region's default EventBridge bus, and the alarm's actions for the new state (SNS topics
get CloudWatch's JSON notice; Lambda functions the alarm's Lambda-action payload).

GetMetricData is answered from an index of the datapoints (moto scans every datapoint of
the region once per period bucket, which is too slow for a night of one-second periods);
the answer is the one moto gives.
"""

import copy
import json
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Callable

from moto.cloudwatch.models import CloudWatchBackend, MetricAggregatedDatum, cloudwatch_backends
from moto.events.models import _BASE_EVENT_MESSAGE, events_backends
from moto.sns.models import sns_backends

from .core import ACCOUNT, SIM
from .delivery import FUNCTIONS

REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-central-1": "EU (Frankfurt)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "sa-east-1": "South America (Sao Paulo)",
}

COMPARE = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}


def epoch(ts: Any) -> float:
    if isinstance(ts, (int, float)):
        return float(ts)
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.timestamp()


def cw_time(t: float) -> str:
    """CloudWatch's own timestamp format: 2026-11-26T14:01:00.123+0000."""
    d = datetime.fromtimestamp(t, tz=timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}+0000"


def series_key(namespace: str, name: str, dims: Any) -> tuple:
    pairs = []
    for d in dims or []:
        if isinstance(d, dict):
            pairs.append((d.get("Name"), d.get("Value")))
        else:
            pairs.append((d.name, d.value))
    return (namespace, name, tuple(sorted(pairs)))


class Index:
    """Datapoints by (region, namespace, name, dimensions), in arrival order."""

    def __init__(self) -> None:
        self.series: dict[tuple, list[tuple[float, Any]]] = defaultdict(list)

    def add(self, region: str, datum: Any) -> None:
        key = (region, *series_key(datum.namespace, datum.name, datum.dimensions))
        self.series[key].append((epoch(datum.timestamp), datum))

    def between(self, region: str, key: tuple, start: float, end: float) -> list[tuple[float, Any]]:
        return [(t, d) for t, d in self.series.get((region, *key), ()) if start <= t < end]


INDEX = Index()


def alarm_state(
    values: list[float | None],
    n: int,
    m: int,
    treat: str,
    breaching: Callable[[float], bool],
) -> tuple[str, int, int] | None:
    """The state an alarm evaluates to, from the statistic of each period of its evaluation
    range (newest first, None for a missing period): `EvaluationPeriods` n, `DatapointsToAlarm`
    m. Returns (state, real datapoints evaluated, missing datapoints filled in), or None when
    the state is kept. CloudWatch evaluates the n most recent real datapoints of the range when
    there are that many, ignoring `TreatMissingData`; otherwise every real one, filling in as
    few missing ones as it needs ("Configuring how CloudWatch alarms treat missing data")."""
    real = [v for v in values if v is not None]
    if len(real) >= n:
        real, missing = real[:n], 0
    else:
        missing = n - len(real)
    bad = sum(1 for v in real if breaching(v)) + (missing if treat == "breaching" else 0)
    if bad >= m:
        return "ALARM", len(real), missing
    if missing and treat == "ignore":
        return None  # "the current alarm state is maintained"
    if not real and treat == "missing":
        return "INSUFFICIENT_DATA", 0, missing
    return "OK", len(real), missing


def statistic(data: list[Any], stat: str) -> float | None:
    values = [d.value for d in data if not isinstance(d, MetricAggregatedDatum)]
    aggregated = [d for d in data if isinstance(d, MetricAggregatedDatum)]
    count = len(values) + sum(a.sample_count for a in aggregated)
    if count == 0:
        return None
    total = sum(values) + sum(a.sum for a in aggregated)
    if stat == "Sum":
        return total
    if stat == "SampleCount":
        return count
    if stat == "Average":
        return total / count
    if stat == "Minimum":
        return min(values + [a.min for a in aggregated])
    if stat == "Maximum":
        return max(values + [a.max for a in aggregated])
    return None


def evaluation_range(region: str, alarm: Any, end: int) -> list[tuple[int, float | None]]:
    """The statistic of each period of the alarm's evaluation range ending at `end`, newest
    first: (period start, value or None)."""
    period = int(alarm.period)
    key = series_key(alarm.namespace, alarm.metric_name, alarm.dimensions)
    points = []
    for i in range(2 * int(alarm.evaluation_periods)):
        start = end - (i + 1) * period
        data = [d for _, d in INDEX.between(region, key, start, start + period)]
        points.append((start, statistic(data, alarm.statistic)))
    return points


def last_complete(t: float, period: int) -> int:
    """The end of the last period CloudWatch evaluates at `t`: a period is evaluated once it
    is complete, a little after its end, so that datapoints published for it have arrived."""
    boundary = int(t // period) * period
    return boundary - period if t < boundary + 0.5 * period else boundary


def data_stream_state(region: str, name: str, t: float) -> str:
    """What the alarm's data says at `t`, whatever state the alarm itself holds: OK, ALARM,
    or INSUFFICIENT_DATA when no datapoint is in its evaluation range (`TreatMissingData` is
    the alarm's, not the data's). Route 53's health checks of CloudWatch alarms read this
    ("Route 53 monitors the data stream for the corresponding alarm instead of monitoring the
    alarm state", "How Amazon Route 53 determines whether a health check is healthy")."""
    alarm = cloudwatch_backends[ACCOUNT][region].alarms.get(name) if region in cloudwatch_backends[ACCOUNT] else None
    if alarm is None or not alarm.metric_name or not alarm.period:
        return "INSUFFICIENT_DATA"
    breaches, _ = COMPARE.get(alarm.comparison_operator, (None, ""))
    if breaches is None:
        return "INSUFFICIENT_DATA"
    n = int(alarm.evaluation_periods)
    m = int(alarm.datapoints_to_alarm or n)
    values = [v for _, v in evaluation_range(region, alarm, last_complete(t, int(alarm.period)))]
    decided = alarm_state(values, n, m, "missing", lambda v: breaches(v, alarm.threshold))
    return decided[0] if decided is not None else "INSUFFICIENT_DATA"


class Alarms:
    def __init__(self) -> None:
        self.evaluated: dict[str, int] = {}  # alarm ARN -> last period boundary evaluated
        self.history: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def tick(self, t: float) -> None:
        for region, backend in list(cloudwatch_backends[ACCOUNT].items()):
            if not SIM.cfg(region, "alarm_evaluation"):
                continue
            for alarm in list(backend.alarms.values()):
                if not alarm.metric_name or not alarm.period or alarm.rule:
                    continue  # metric math and composite alarms are not evaluated
                boundary = last_complete(t, int(alarm.period))
                if self.evaluated.get(alarm.alarm_arn) == boundary:
                    continue
                self.evaluated[alarm.alarm_arn] = boundary
                self.evaluate(region, alarm, boundary, t)

    def evaluate(self, region: str, alarm: Any, end: int, t: float) -> None:
        """CloudWatch's evaluation ("Configuring how CloudWatch alarms treat missing data"): it
        retrieves more periods than `EvaluationPeriods` (the evaluation range; its size is not
        documented, here twice the periods). With at least N real datapoints in the range it
        evaluates the N most recent of them and ignores `TreatMissingData`; with fewer, it fills
        in as few missing datapoints as it needs, as `TreatMissingData` says, and evaluates those
        with every real datapoint of the range."""
        period = int(alarm.period)
        n = int(alarm.evaluation_periods)
        m = int(alarm.datapoints_to_alarm or n)
        breaches, compare_words = COMPARE.get(alarm.comparison_operator, (None, ""))
        if breaches is None:
            return
        points = evaluation_range(region, alarm, end)
        treat = alarm.treat_missing_data or "missing"
        decided = alarm_state([v for _, v in points], n, m, treat, lambda v: breaches(v, alarm.threshold))
        if decided is None or decided[0] == alarm.state_value:
            return
        state, present, missing = decided
        present = [(s, v) for s, v in points if v is not None][:present]
        breaching_present = sum(1 for _, v in present if breaches(v, alarm.threshold))
        fmt = lambda s: datetime.fromtimestamp(s, tz=timezone.utc).strftime("%d/%m/%y %H:%M:%S")
        listed = ", ".join(f"{v} ({fmt(s)})" for s, v in present)
        if state == "INSUFFICIENT_DATA":
            reason = f"Insufficient Data: {n} datapoints were unknown."
        elif present:
            counted = breaching_present if state == "ALARM" else len(present) - breaching_present
            verb = "were" if state == "ALARM" else "were not"
            reason = (
                f"Threshold Crossed: {counted} out of the last {n} datapoints [{listed}] {verb} {compare_words} the "
                f"threshold ({alarm.threshold}) (minimum {m} datapoint{'s' if m > 1 else ''} for "
                f"{alarm.state_value} -> {state} transition)."
            )
            if missing and treat == "breaching" and state == "ALARM":
                reason = reason[:-1] + f" and {missing} missing datapoint{'s were' if missing > 1 else ' was'} treated as [Breaching]."
        else:
            treated = "Breaching" if treat == "breaching" else "NonBreaching"
            reason = f"Threshold Crossed: no datapoints were received for {n} periods and {n} missing datapoints were treated as [{treated}]."
        reason_data = json.dumps(
            {
                "version": "1.0",
                "queryDate": cw_time(t),
                "startDate": cw_time(end - n * period),
                "statistic": alarm.statistic,
                "period": period,
                "recentDatapoints": [v for _, v in reversed(present)],
                "threshold": alarm.threshold,
                "evaluatedDatapoints": [{"timestamp": cw_time(s), "value": v} for s, v in present],
            }
        )
        self.change(region, alarm, state, reason, reason_data, t)

    def change(self, region: str, alarm: Any, state: str, reason: str, reason_data: str, t: float) -> None:
        previous = {"value": alarm.state_value, "reason": alarm.state_reason, "timestamp": cw_time(epoch(alarm.state_updated_timestamp))}
        alarm.update_state(reason, reason_data, state)
        alarm.state_updated_timestamp = datetime.fromtimestamp(t, tz=timezone.utc).replace(tzinfo=None)
        current = {"value": state, "reason": reason, "reasonData": reason_data, "timestamp": cw_time(t)}
        self.history[alarm.alarm_arn].append({"state": state, "at": t, "reason": reason})
        configuration = {
            "description": alarm.description or "",
            "metrics": [
                {
                    "id": "m1",
                    "metricStat": {
                        "metric": {
                            "namespace": alarm.namespace,
                            "name": alarm.metric_name,
                            "dimensions": {d.name: d.value for d in alarm.dimensions},
                        },
                        "period": int(alarm.period),
                        "stat": alarm.statistic,
                    },
                    "returnData": True,
                }
            ],
        }
        detail = {"alarmName": alarm.name, "state": current, "previousState": previous, "configuration": configuration}
        times = SIM.cfg(region, "deliveries")
        self.to_eventbridge(region, alarm, detail, t, int(times.get("eventbridge", 1)))
        if not alarm.actions_enabled:
            return
        actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions, "INSUFFICIENT_DATA": alarm.insufficient_data_actions}[state]
        for action in actions or []:
            if ":sns:" in action:
                self.to_sns(region, alarm, action, previous, current, int(times.get("sns", 1)))
            elif ":lambda:" in action:
                payload = {
                    "source": "aws.cloudwatch",
                    "alarmArn": alarm.alarm_arn,
                    "accountId": ACCOUNT,
                    "time": cw_time(t),
                    "region": region,
                    "alarmData": detail,
                }
                for _ in range(int(times.get("lambda", 1))):
                    FUNCTIONS.invoke_async(action, payload)

    @staticmethod
    def to_eventbridge(region: str, alarm: Any, detail: dict[str, Any], t: float, times: int) -> None:
        """The "CloudWatch Alarm State Change" event on the region's default bus, routed by
        moto's rule matching. A redelivery carries the same event id, as EventBridge's do."""
        events = events_backends[ACCOUNT][region]
        message = copy.deepcopy(_BASE_EVENT_MESSAGE)
        message.update(
            {
                "id": str(uuid.uuid4()),
                "detail-type": "CloudWatch Alarm State Change",
                "source": "aws.cloudwatch",
                "account": ACCOUNT,
                "time": t,
                "region": region,
                "resources": [alarm.alarm_arn],
                "detail": detail,
                "ingestion-time": t,
            }
        )
        bus = events.describe_event_bus("default")
        for _ in range(times):
            for rule in list(bus.rules.values()):
                if rule.state == "ENABLED":
                    rule.send_to_targets(copy.deepcopy(message))

    @staticmethod
    def to_sns(region: str, alarm: Any, topic: str, previous: dict[str, Any], current: dict[str, Any], times: int) -> None:
        """CloudWatch's JSON alarm notice, with its subject line."""
        long_region = REGION_NAMES.get(region, region)
        message = {
            "AlarmName": alarm.name,
            "AlarmDescription": alarm.description,
            "AWSAccountId": ACCOUNT,
            "AlarmConfigurationUpdatedTimestamp": cw_time(epoch(alarm.configuration_updated_timestamp)),
            "NewStateValue": current["value"],
            "NewStateReason": current["reason"],
            "StateChangeTime": current["timestamp"],
            "Region": long_region,
            "AlarmArn": alarm.alarm_arn,
            "OldStateValue": previous["value"],
            "OKActions": alarm.ok_actions,
            "AlarmActions": alarm.alarm_actions,
            "InsufficientDataActions": alarm.insufficient_data_actions,
            "Trigger": {
                "MetricName": alarm.metric_name,
                "Namespace": alarm.namespace,
                "StatisticType": "Statistic",
                "Statistic": (alarm.statistic or "").upper(),
                "Unit": alarm.unit,
                "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
                "Period": int(alarm.period),
                "EvaluationPeriods": int(alarm.evaluation_periods),
                "DatapointsToAlarm": int(alarm.datapoints_to_alarm or alarm.evaluation_periods),
                "ComparisonOperator": alarm.comparison_operator,
                "Threshold": alarm.threshold,
                "TreatMissingData": alarm.treat_missing_data or "missing",
            },
        }
        subject = f'{current["value"]}: "{alarm.name}" in {long_region}'[:100]
        topic_region = topic.split(":")[3]
        for _ in range(times):
            try:
                sns_backends[ACCOUNT][topic_region].publish(json.dumps(message), arn=topic, subject=subject)
            except Exception as e:  # a deleted topic: CloudWatch records a failed action
                print(f"drsim: alarm action {topic} failed: {e!r}", flush=True)


ALARMS = Alarms()


def install() -> None:
    original_put = CloudWatchBackend.put_metric_data
    original_get = CloudWatchBackend.get_metric_data
    original_put_alarm = CloudWatchBackend.put_metric_alarm

    def put_metric_data(self: CloudWatchBackend, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        before = len(self.metric_data)
        original_put(self, namespace, metric_data)
        for datum in self.metric_data[before:]:
            INDEX.add(self.region_name, datum)

    def get_metric_data(self: CloudWatchBackend, queries: list[dict[str, Any]], start_time: datetime, end_time: datetime, scan_by: str = "TimestampAscending") -> list[dict[str, Any]]:
        if not queries or any("MetricStat" not in q for q in queries):
            return original_get(self, queries, start_time, end_time, scan_by)
        start = epoch(start_time.replace(microsecond=0))
        end = epoch(end_time.replace(microsecond=0))
        if start >= end:
            return original_get(self, queries, start_time, end_time, scan_by)
        out = []
        for q in queries:
            stat = q["MetricStat"]
            metric = stat["Metric"]
            period = int(stat["Period"])
            key = series_key(metric["Namespace"], metric["MetricName"], metric.get("Dimensions", []))
            buckets: dict[int, list[Any]] = defaultdict(list)
            # moto's (and AWS's) buckets start at StartTime, one per period, up to EndTime
            # as moto (and AWS): datapoints from StartTime (inclusive) to EndTime (exclusive)
            for t, d in INDEX.between(self.region_name, key, start, end):
                buckets[int((t - start) // period)].append(d)
            rows = sorted((i, statistic(data, stat["Stat"])) for i, data in buckets.items())
            rows = [(i, v) for i, v in rows if v is not None]
            if scan_by == "TimestampDescending":
                rows.reverse()
            stamps = [datetime.fromtimestamp(start + i * period, tz=timezone.utc) for i, _ in rows]
            label = q.get("Label") or f"{metric['MetricName']} {stat['Stat']}"
            if q.get("ReturnData", True):
                out.append({"id": q["Id"], "label": label, "values": [v for _, v in rows], "timestamps": stamps, "status_code": "Complete"})
        return out

    def put_metric_alarm(self: CloudWatchBackend, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("name", args[0] if args else None)
        existing = self.alarms.get(name)
        alarm = original_put_alarm(self, *args, **kwargs)
        if existing is not None:
            # AWS keeps an alarm's state when its definition is updated
            alarm.state_value, alarm.state_reason = existing.state_value, existing.state_reason
            alarm.state_reason_data, alarm.state_updated_timestamp = existing.state_reason_data, existing.state_updated_timestamp
            alarm.history = existing.history
        elif SIM.cfg(self.region_name, "alarm_evaluation"):
            # AWS: a new alarm starts in INSUFFICIENT_DATA until its first evaluation.
            alarm.state_value = "INSUFFICIENT_DATA"
        return alarm

    CloudWatchBackend.put_metric_data = put_metric_data
    CloudWatchBackend.get_metric_data = get_metric_data
    CloudWatchBackend.put_metric_alarm = put_metric_alarm
    SIM.tickers.append(ALARMS.tick)


def history(_b: dict[str, Any], _q: dict[str, str], region: str, name: str) -> dict[str, Any]:
    alarm = cloudwatch_backends[ACCOUNT][region].alarms.get(name)
    if alarm is None:
        raise KeyError(f"no alarm {name} in {region}")
    return {"alarm": name, "state": alarm.state_value, "changes": ALARMS.history.get(alarm.alarm_arn, [])}
