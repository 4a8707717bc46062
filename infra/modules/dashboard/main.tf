# drpilot's CloudWatch dashboard, generated from the lists the functions are configured with:
# every resource's recovery point against its budget, replication health, the snapshot copier,
# S3 backups, every alarm, and the functions (the failover promoter first). Widgets without x/y
# are laid out by CloudWatch in order.

locals {
  ns = var.namespace
  p  = var.period
  # Resources in groups of 20: one grouped graph each (a graph holds up to 500 metrics; 20 lines
  # are still readable).
  groups  = chunklist(var.resources, 20)
  backups = [for r in var.resources : r if r.kind == "s3-backup"]
  fn      = var.functions

  header = [{
    type   = "text"
    width  = 24
    height = 3
    properties = {
      markdown = join("\n", [
        "# ${var.title}",
        "Recovery point = seconds of data a failover would lose now (for an S3 backup or snapshot copies: the age of the newest copy). The horizontal line is each resource's RPO budget.",
        "Status page for phones: `drpilot status --url`. Alarms below are drpilot's own; the failover promoter acts on the primary-down ones.",
      ])
    }
  }]

  alarms = [for i, chunk in chunklist(var.alarm_arns, 100) : {
    type   = "alarm"
    width  = 24
    height = 6
    properties = {
      title  = "drpilot's alarms${length(var.alarm_arns) > 100 ? " (${i + 1})" : ""}"
      alarms = chunk
      sortBy = "stateUpdatedTimestamp"
    }
  }]

  # Every resource, as a percentage of its own budget: one scale for a whole fleet.
  percent = [for group in local.groups : {
    type   = "metric"
    width  = 24
    height = 6
    properties = {
      title  = "Recovery point as % of its RPO budget (100 = at budget): ${join(", ", [for r in group : r.name])}"
      view   = "timeSeries"
      region = var.region
      period = local.p
      stat   = "Maximum"
      metrics = concat(
        [for j, r in group : [local.ns, "RecoveryPointSeconds", "Resource", r.name, { id = "m${j}", visible = false }]],
        [for j, r in group : [{ expression = "100 * m${j} / ${r.rpo_seconds}", label = r.name, id = "e${j}" }]],
      )
      annotations = { horizontal = [{ label = "RPO budget", value = 100 }] }
      yAxis       = { left = { min = 0, label = "% of budget", showUnits = false } }
    }
  }]

  # Each resource on its own, its budget as a line (a fleet larger than detail_limit has the
  # grouped graphs only: a dashboard holds at most 500 widgets).
  detail = [for r in var.resources : {
    type   = "metric"
    width  = 12
    height = 6
    properties = {
      title       = "${r.name}: ${r.kind == "s3-backup" ? "age of the newest point in time" : "recovery point"} (budget ${r.rpo_seconds} s)"
      view        = "timeSeries"
      region      = var.region
      period      = local.p
      stat        = "Maximum"
      metrics     = [[local.ns, "RecoveryPointSeconds", "Resource", r.name, { label = "${r.name} (seconds)" }]]
      annotations = { horizontal = [{ label = "RPO budget ${r.rpo_seconds} s", value = r.rpo_seconds }] }
      yAxis       = { left = { min = 0 } }
    }
  } if length(var.resources) <= var.detail_limit]

  health = [for group in local.groups : {
    type   = "metric"
    width  = 24
    height = 5
    properties = {
      title       = "Replication health, 0 healthy, 1 over budget, 2 broken (none: not measured): ${join(", ", [for r in group : r.name])}"
      view        = "timeSeries"
      region      = var.region
      period      = local.p
      stat        = "Maximum"
      metrics     = [for r in group : [local.ns, "RpoStatus", "Resource", r.name]]
      annotations = { horizontal = [{ label = "over budget", value = 1 }, { label = "broken", value = 2 }] }
      yAxis       = { left = { min = 0, max = 2.2, showUnits = false } }
    }
  }]

  s3 = [for x in [1] : {
    type   = "metric"
    width  = 12
    height = 6
    properties = {
      title   = "S3 backups: age of the newest point in time (seconds)"
      view    = "timeSeries"
      region  = var.region
      period  = local.p
      stat    = "Maximum"
      metrics = [for r in local.backups : [local.ns, "RecoveryPointSeconds", "Resource", r.name]]
    }
  } if length(local.backups) > 0]

  checker = [{
    type   = "metric"
    width  = 12
    height = 6
    properties = {
      title  = "Lag checker: resources it could not measure, and its runs"
      view   = "timeSeries"
      region = var.region
      period = local.p
      metrics = [
        [local.ns, "UnmeasuredResources", { stat = "Maximum", label = "not measured" }],
        [local.ns, "UnmeasuredResources", { stat = "SampleCount", label = "runs" }],
      ]
    }
  }]

  copier = [for x in [1] : {
    type   = "metric"
    width  = 12
    height = 6
    properties = {
      title  = "Snapshot copier: copies started, queued, failed, in flight"
      view   = "timeSeries"
      region = var.region
      period = local.p
      metrics = [
        [local.ns, "SnapshotCopiesStarted", { stat = "Sum", label = "started" }],
        [local.ns, "SnapshotCopiesQueued", { stat = "Maximum", label = "queued (AWS's copy quota)" }],
        [local.ns, "SnapshotCopiesFailed", { stat = "Sum", label = "failed" }],
        [local.ns, "SnapshotCopiesInFlight", { stat = "Maximum", label = "in flight" }],
      ]
    }
  } if contains(keys(local.fn), "copier")]

  failovers = [for x in [1] : {
    type   = "metric"
    width  = 12
    height = 6
    properties = {
      title   = "Failovers (FailedOver: 1 = DNS switched to the DR region)"
      view    = "timeSeries"
      region  = var.region
      period  = local.p
      stat    = "Maximum"
      metrics = [for d in var.databases : [local.ns, "FailedOver", "Database", d]]
    }
  } if length(var.databases) > 0]

  promoter = [for x in [1] : {
    type   = "metric"
    width  = 12
    height = 6
    properties = {
      title  = "Failover promoter: invocations and errors"
      view   = "timeSeries"
      region = var.region
      period = 300
      stat   = "Sum"
      metrics = [
        ["AWS/Lambda", "Invocations", "FunctionName", local.fn["promoter"]],
        ["AWS/Lambda", "Errors", "FunctionName", local.fn["promoter"]],
        ["AWS/Lambda", "Throttles", "FunctionName", local.fn["promoter"]],
      ]
    }
  } if contains(keys(local.fn), "promoter")]

  functions = [{
    type   = "metric"
    width  = 12
    height = 6
    properties = {
      title   = "drpilot's functions: errors"
      view    = "timeSeries"
      region  = var.region
      period  = 300
      stat    = "Sum"
      metrics = [for role, name in local.fn : ["AWS/Lambda", "Errors", "FunctionName", name, { label = name }]]
    }
  }]

  body = jsonencode({
    widgets = concat(
      local.header, local.alarms, local.percent, local.health, local.detail, local.s3,
      local.checker, local.copier, local.failovers, local.promoter, local.functions,
    )
  })
}
