# dns.mode = "failover-records": the app's record as a pair of Route 53 failover records that
# Route 53's data plane switches by itself, so that a failover needs no Route 53 API call.
#
# Route 53's API (ChangeResourceRecordSets, its control plane) runs in us-east-1. With
# dns.mode = "upsert" the promoter UPSERTs the record: simple, but when the primary region *is*
# us-east-1 the UPSERT may fail exactly when it is needed. Here instead:
#   - PRIMARY  record_name -> the primary's endpoint, health-checked by the alarm below;
#   - SECONDARY record_name -> the standby's endpoint (the same endpoint after promotion);
#   - the alarm, in the DR region, on drpilot's FailedOver metric (Database = name): the
#     promoter publishes FailedOver = 1 there once the standby is promoted; at the end of that
#     minute the alarm goes to ALARM, the health check turns unhealthy, and Route 53's
#     resolvers answer the SECONDARY.
#   - Route 53 reads the alarm's data stream, not its state ("How Amazon Route 53 determines
#     whether a health check is healthy"): once the single datapoint has aged out the data is
#     insufficient, and LastKnownStatus keeps the check unhealthy (clients stay on the
#     standby); a new check, with no data yet, is healthy. "ignore" keeps the alarm itself in
#     ALARM likewise, which is what the promoter reads.
#   - The alarm is named after the primary, and a new alarm replaces the health check: when
#     roles are swapped after a failover (the promoted standby becomes `primary`), Terraform
#     makes a fresh, healthy pair instead of inheriting the old one's ALARM or last known
#     status, which would send clients to the new replica.
# Sending clients back to the primary is drpilot's failback (`drpilot failback`): it publishes
# FailedOver = 0 itself once the primary region's replica is promoted. Do it by hand only after
# failing back by hand (never while the primary region holds no promoted primary: clients
# would reach a replica):
#   aws cloudwatch put-metric-data --region <dr_region> --namespace <metric_namespace> \
#     --metric-name FailedOver --dimensions Database=<name> --value 0
# Remove the simple record of the same name first: Route 53 refuses a simple record beside
# failover records of the same name and type.

locals {
  failover_records   = { for d in var.databases : d.name => d if d.dns.mode == "failover-records" }
  failed_over_alarms = { for name, d in local.failover_records : name => "${var.name_prefix}-${name}-${d.kind == "rds-replica" ? d.primary : d.primary_cluster}-failed-over" }
  # Each side's endpoint. An RDS replica keeps its endpoint when promoted, and so does an Aurora
  # secondary cluster's writer endpoint.
  dns_targets = merge(
    { for n, s in data.aws_db_instance.dns_standby : n => { primary = data.aws_db_instance.dns_primary[n].address, standby = s.address } },
    { for n, s in data.aws_rds_cluster.dns_standby : n => { primary = data.aws_rds_cluster.dns_primary[n].endpoint, standby = s.endpoint } },
  )
}

data "aws_db_instance" "dns_primary" {
  provider               = aws.primary
  for_each               = { for n, d in local.failover_records : n => d if d.kind == "rds-replica" }
  db_instance_identifier = each.value.primary
}

data "aws_db_instance" "dns_standby" {
  provider               = aws.dr
  for_each               = { for n, d in local.failover_records : n => d if d.kind == "rds-replica" }
  db_instance_identifier = each.value.replica
}

data "aws_rds_cluster" "dns_primary" {
  provider           = aws.primary
  for_each           = { for n, d in local.failover_records : n => d if d.kind == "aurora-global" }
  cluster_identifier = each.value.primary_cluster
}

data "aws_rds_cluster" "dns_standby" {
  provider           = aws.dr
  for_each           = { for n, d in local.failover_records : n => d if d.kind == "aurora-global" }
  cluster_identifier = each.value.secondary_cluster
}

resource "aws_cloudwatch_metric_alarm" "failed_over" {
  provider            = aws.dr
  for_each            = local.failover_records
  alarm_name          = local.failed_over_alarms[each.key]
  alarm_description   = "drpilot: ${each.key} failed over; while this is in ALARM Route 53 answers ${each.value.dns.record_name} with the standby (the SECONDARY record). drpilot failback puts FailedOver 0 once the primary region's replica is promoted (see dns.tf)."
  namespace           = var.metric_namespace
  metric_name         = "FailedOver"
  dimensions          = { Database = each.key }
  statistic           = "Maximum"
  period              = local.metric_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "ignore" # one datapoint switches; only FailedOver = 0 switches back
  alarm_actions       = [aws_sns_topic.responders.arn]
  ok_actions          = [aws_sns_topic.responders.arn]
  tags                = local.tags
}

resource "aws_route53_health_check" "failed_over" {
  provider                        = aws.dr
  for_each                        = local.failover_records
  type                            = "CLOUDWATCH_METRIC"
  cloudwatch_alarm_name           = aws_cloudwatch_metric_alarm.failed_over[each.key].alarm_name
  cloudwatch_alarm_region         = var.dr_region
  insufficient_data_health_status = "LastKnownStatus"
  tags                            = merge(local.tags, { Name = local.failed_over_alarms[each.key] })
  # A renamed alarm (roles swapped) needs a new health check: an updated one would keep its
  # last known status, unhealthy, and send clients to the new replica.
  lifecycle {
    replace_triggered_by  = [aws_cloudwatch_metric_alarm.failed_over[each.key]]
    create_before_destroy = true
  }
}

resource "aws_route53_record" "primary" {
  provider        = aws.dr
  for_each        = local.failover_records
  zone_id         = each.value.dns.zone_id
  name            = each.value.dns.record_name
  type            = "CNAME"
  ttl             = each.value.dns.ttl
  records         = [local.dns_targets[each.key].primary]
  set_identifier  = "primary"
  health_check_id = aws_route53_health_check.failed_over[each.key].id
  failover_routing_policy {
    type = "PRIMARY"
  }
}

resource "aws_route53_record" "secondary" {
  provider       = aws.dr
  for_each       = local.failover_records
  zone_id        = each.value.dns.zone_id
  name           = each.value.dns.record_name
  type           = "CNAME"
  ttl            = each.value.dns.ttl
  records        = [local.dns_targets[each.key].standby]
  set_identifier = "secondary"
  failover_routing_policy {
    type = "SECONDARY"
  }
}
