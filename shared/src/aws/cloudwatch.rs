//! CloudWatch: reading lag metrics and publishing drpilot's own.

use super::{aws_error, to_chrono};
use crate::error::Result;
use crate::plan::lag::Datapoint;
use crate::ports::{MetricId, MetricUnit, MetricValue, Metrics, MAX_QUERIES};
use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricDatum, MetricStat, ScanBy, StandardUnit};
use aws_sdk_cloudwatch::Client;
use chrono::{DateTime, Utc};

/// PutMetricData takes at most 1000 values per call.
const MAX_PUT: usize = 1000;

pub struct CloudWatchMetrics {
    client: Client,
}

impl CloudWatchMetrics {
    pub fn new(sdk: &SdkConfig, region: &str) -> Self {
        let conf = aws_sdk_cloudwatch::config::Builder::from(sdk)
            .region(aws_sdk_cloudwatch::config::Region::new(region.to_string()))
            .build();
        CloudWatchMetrics {
            client: Client::from_conf(conf),
        }
    }

    pub fn with_client(client: Client) -> Self {
        CloudWatchMetrics { client }
    }
}

fn dimensions(dims: &[(String, String)]) -> Option<Vec<Dimension>> {
    Some(
        dims.iter()
            .map(|(k, v)| Dimension::builder().name(k).value(v).build())
            .collect(),
    )
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(t.timestamp_millis())
}

impl CloudWatchMetrics {
    /// One `GetMetricData` (and its continuation pages) for at most `MAX_QUERIES` metrics:
    /// each metric's datapoints, oldest first.
    async fn series_batch(
        &self,
        metrics: &[MetricId],
        period_seconds: u32,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Result<Vec<Datapoint>>>> {
        let queries: Vec<MetricDataQuery> = metrics
            .iter()
            .enumerate()
            .map(|(i, metric)| {
                MetricDataQuery::builder()
                    .id(format!("m{i}"))
                    .metric_stat(
                        MetricStat::builder()
                            .metric(
                                Metric::builder()
                                    .namespace(&metric.namespace)
                                    .metric_name(&metric.name)
                                    .set_dimensions(dimensions(&metric.dimensions))
                                    .build(),
                            )
                            .period(period_seconds as i32)
                            .stat("Maximum")
                            .build(),
                    )
                    .return_data(true)
                    .build()
            })
            .collect();
        let mut series: Vec<Result<Vec<Datapoint>>> = metrics.iter().map(|_| Ok(vec![])).collect();
        let mut answered = vec![false; metrics.len()];
        // A large answer comes in pages (NextToken); each page adds datapoints to its queries.
        let mut pages = self
            .client
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(smithy_time(from))
            .end_time(smithy_time(to))
            .scan_by(ScanBy::TimestampDescending)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("GetMetricData", e))?;
            for result in page.metric_data_results() {
                let Some(i) = result.id().and_then(|id| id.strip_prefix('m')?.parse::<usize>().ok()) else {
                    continue;
                };
                let Some(slot) = series.get_mut(i) else { continue };
                answered[i] = true;
                if let Some(failed) = query_failure(result) {
                    *slot = Err(failed);
                    continue;
                }
                if let Ok(points) = slot.as_mut() {
                    points.extend(result.timestamps().iter().zip(result.values()).filter_map(|(t, v)| {
                        Some(Datapoint {
                            at: to_chrono(t)?,
                            value: *v,
                        })
                    }));
                }
            }
        }
        // A query CloudWatch did not answer at all is not "no datapoint".
        for (slot, _) in series.iter_mut().zip(answered).filter(|(_, answered)| !answered) {
            *slot = Err(crate::error::Error::Aws {
                operation: "GetMetricData",
                code: "NoResult".into(),
                message: "CloudWatch returned no result for this metric".into(),
                retryable: true,
            });
        }
        for points in series.iter_mut().flatten() {
            points.sort_by_key(|p| p.at);
            points.dedup_by_key(|p| p.at);
        }
        Ok(series)
    }
}

/// CloudWatch's answer for one query it could not serve (the call itself succeeded).
fn query_failure(result: &aws_sdk_cloudwatch::types::MetricDataResult) -> Option<crate::error::Error> {
    use aws_sdk_cloudwatch::types::StatusCode;
    let code = match result.status_code() {
        Some(StatusCode::InternalError) => "InternalError",
        Some(StatusCode::Forbidden) => "Forbidden",
        _ => return None,
    };
    let message = result
        .messages()
        .iter()
        .filter_map(|m| m.value())
        .collect::<Vec<_>>()
        .join("; ");
    Some(crate::error::Error::Aws {
        operation: "GetMetricData",
        code: code.into(),
        message,
        retryable: code == "InternalError",
    })
}

impl Metrics for CloudWatchMetrics {
    async fn newest_each(
        &self,
        metrics: &[MetricId],
        period_seconds: u32,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Result<Option<Datapoint>>>> {
        let series = self.series_each(metrics, period_seconds, from, to).await?;
        Ok(series
            .into_iter()
            .map(|s| s.map(|points| points.into_iter().max_by_key(|p| p.at)))
            .collect())
    }

    async fn series_each(
        &self,
        metrics: &[MetricId],
        period_seconds: u32,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Result<Vec<Datapoint>>>> {
        // All batches at once: a fleet's metrics are a few batches of 500.
        let batches: Vec<Vec<Result<Vec<Datapoint>>>> = futures::future::try_join_all(
            metrics
                .chunks(MAX_QUERIES)
                .map(|batch| self.series_batch(batch, period_seconds, from, to)),
        )
        .await?;
        Ok(batches.into_iter().flatten().collect())
    }

    async fn publish(&self, namespace: &str, values: &[MetricValue]) -> Result<()> {
        let mut failed = vec![];
        for chunk in values.chunks(MAX_PUT) {
            let data: Vec<MetricDatum> = chunk
                .iter()
                .map(|v| {
                    MetricDatum::builder()
                        .metric_name(&v.name)
                        .set_dimensions(dimensions(&v.dimensions))
                        .value(v.value)
                        .unit(match v.unit {
                            MetricUnit::Seconds => StandardUnit::Seconds,
                            MetricUnit::Count => StandardUnit::Count,
                            MetricUnit::None => StandardUnit::None,
                        })
                        .timestamp(smithy_time(v.at))
                        .build()
                })
                .collect();
            // Every chunk is tried: one refused call must not silence the values after it.
            let sent = self
                .client
                .put_metric_data()
                .namespace(namespace)
                .set_metric_data(Some(data))
                .send()
                .await;
            if let Err(e) = sent {
                failed.push((chunk.len(), aws_error("PutMetricData", e)));
            }
        }
        match failed.len() {
            0 => Ok(()),
            1 => Err(failed.remove(0).1),
            n => Err(crate::error::Error::RunFailed(format!(
                "{n} PutMetricData calls failed ({} values), the first: {}",
                failed.iter().map(|(values, _)| values).sum::<usize>(),
                failed[0].1
            ))),
        }
    }
}

/// Re-reads alarms in whichever region they live (the event says which).
pub struct CloudWatchAlarms {
    sdk: SdkConfig,
}

impl CloudWatchAlarms {
    pub fn new(sdk: &SdkConfig) -> Self {
        CloudWatchAlarms { sdk: sdk.clone() }
    }
}

impl crate::ports::AlarmView for CloudWatchAlarms {
    async fn alarm(&self, region: &str, name: &str) -> Result<Option<crate::ports::AlarmState>> {
        Ok(self.alarms(region, &[name.to_string()]).await?.remove(name))
    }

    async fn alarms(
        &self,
        region: &str,
        names: &[String],
    ) -> Result<std::collections::BTreeMap<String, crate::ports::AlarmState>> {
        use crate::ports::AlarmState;
        let client = CloudWatchMetrics::new(&self.sdk, region).client;
        let mut found = std::collections::BTreeMap::new();
        // DescribeAlarms takes at most 100 names
        for chunk in names.chunks(100) {
            let out = client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
                .send()
                .await
                .map_err(|e| aws_error("DescribeAlarms", e))?;
            let state = |value: Option<&aws_sdk_cloudwatch::types::StateValue>,
                         transitioned: Option<&aws_smithy_types::DateTime>,
                         updated: Option<&aws_smithy_types::DateTime>,
                         reason: Option<&str>,
                         window| AlarmState {
                value: value.map(|v| v.as_str().to_string()).unwrap_or_default(),
                // the state change itself (StateUpdatedTimestamp also moves with EvaluationState)
                since: transitioned.or(updated).and_then(to_chrono),
                reason: reason.unwrap_or_default().to_string(),
                window,
            };
            for a in out.metric_alarms() {
                let window = match (a.period(), a.evaluation_periods()) {
                    (Some(period), Some(n)) if period > 0 && n > 0 => Some(crate::plan::promotion::AlarmWindow {
                        period: chrono::Duration::seconds(i64::from(period)),
                        evaluation_periods: n as u32,
                        datapoints_to_alarm: a.datapoints_to_alarm().filter(|m| *m > 0).unwrap_or(n) as u32,
                    }),
                    _ => None, // a metric-math alarm: its window is not one period
                };
                let s = state(
                    a.state_value(),
                    a.state_transitioned_timestamp(),
                    a.state_updated_timestamp(),
                    a.state_reason(),
                    window,
                );
                found.insert(a.alarm_name().unwrap_or_default().to_string(), s);
            }
            for a in out.composite_alarms() {
                let s = state(
                    a.state_value(),
                    a.state_transitioned_timestamp(),
                    a.state_updated_timestamp(),
                    a.state_reason(),
                    None,
                );
                found.insert(a.alarm_name().unwrap_or_default().to_string(), s);
            }
        }
        Ok(found)
    }
}
