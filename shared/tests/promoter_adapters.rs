//! Promoter adapters over real SDK clients with `aws-smithy-mocks`, for what moto does not
//! implement: Aurora global failover/switchover (HTTP 500 in moto) and failing health checkers.

use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_global_clusters::DescribeGlobalClustersOutput;
use aws_sdk_rds::operation::failover_global_cluster::FailoverGlobalClusterOutput;
use aws_sdk_rds::operation::switchover_global_cluster::SwitchoverGlobalClusterOutput;
use aws_sdk_rds::types::{DbCluster, GlobalCluster, GlobalClusterMember};
use aws_sdk_route53::operation::get_health_check_status::GetHealthCheckStatusOutput;
use aws_sdk_route53::types::{HealthCheckObservation, StatusReport};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use drpilot::aws::rds::{RdsPrimaryProbe, RdsStandby};
use drpilot::aws::route53::Route53;
use drpilot::model::Standby;
use drpilot::plan::promotion::{Checkers, PrimaryView};
use drpilot::ports::{HealthChecks, PrimaryProbe, Promotion, StandbyControl};

const SECONDARY_ARN: &str = "arn:aws:rds:us-west-2:123456789012:cluster:ledger-dr";

fn aurora() -> Standby {
    Standby::AuroraGlobal {
        global_cluster: "ledger-global".into(),
        primary_cluster: "ledger".into(),
        secondary_cluster: "ledger-dr".into(),
    }
}

fn secondary() -> DescribeDbClustersOutput {
    DescribeDbClustersOutput::builder()
        .db_clusters(
            DbCluster::builder()
                .db_cluster_identifier("ledger-dr")
                .db_cluster_arn(SECONDARY_ARN)
                .status("available")
                .endpoint("ledger-dr.cluster-abc.us-west-2.rds.amazonaws.com")
                .build(),
        )
        .build()
}

fn global(secondary_is_writer: bool, status: &str) -> DescribeGlobalClustersOutput {
    DescribeGlobalClustersOutput::builder()
        .global_clusters(
            GlobalCluster::builder()
                .global_cluster_identifier("ledger-global")
                .status(status)
                .global_cluster_members(
                    GlobalClusterMember::builder()
                        .db_cluster_arn("arn:aws:rds:us-east-1:123456789012:cluster:ledger")
                        .is_writer(!secondary_is_writer)
                        .build(),
                )
                .global_cluster_members(
                    GlobalClusterMember::builder()
                        .db_cluster_arn(SECONDARY_ARN)
                        .is_writer(secondary_is_writer)
                        .build(),
                )
                .build(),
        )
        .build()
}

#[tokio::test]
async fn unplanned_aurora_failover_allows_data_loss_and_is_seen_through_to_the_new_writer() {
    let clusters = mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(secondary);
    let failover = mock!(aws_sdk_rds::Client::failover_global_cluster)
        .match_requests(|r| {
            r.global_cluster_identifier() == Some("ledger-global")
                && r.target_db_cluster_identifier() == Some(SECONDARY_ARN)
                && r.allow_data_loss() == Some(true)
        })
        .then_output(|| FailoverGlobalClusterOutput::builder().build());
    let switchover = mock!(aws_sdk_rds::Client::switchover_global_cluster)
        .then_output(|| SwitchoverGlobalClusterOutput::builder().build());
    // before: the secondary replicates; during: the global cluster is failing over; after: it writes
    let globals = mock!(aws_sdk_rds::Client::describe_global_clusters)
        .sequence()
        .output(|| global(false, "available"))
        .output(|| global(true, "failing-over"))
        .output(|| global(true, "available"))
        .build();
    let rds = mock_client!(
        aws_sdk_rds,
        RuleMode::MatchAny,
        [&clusters, &failover, &switchover, &globals]
    );
    let standby = RdsStandby::new(rds);

    let before = standby.state(&aurora()).await.unwrap();
    assert!(before.exists && !before.promoted && before.status == "available");
    standby.promote(&aurora(), false).await.unwrap();
    assert_eq!((failover.num_calls(), switchover.num_calls()), (1, 0));
    let during = standby.state(&aurora()).await.unwrap();
    assert!(
        during.promoted && during.status != "available",
        "not done while the global cluster switches: {during:?}"
    );
    let after = standby.state(&aurora()).await.unwrap();
    assert!(after.promoted && after.status == "available");
    assert_eq!(
        after.endpoint.as_deref(),
        Some("ledger-dr.cluster-abc.us-west-2.rds.amazonaws.com")
    );
}

#[tokio::test]
async fn planned_aurora_failover_is_a_switchover_and_a_repeat_is_accepted() {
    let clusters = mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(secondary);
    let failover = mock!(aws_sdk_rds::Client::failover_global_cluster)
        .then_output(|| FailoverGlobalClusterOutput::builder().build());
    let switchover = mock!(aws_sdk_rds::Client::switchover_global_cluster)
        .match_requests(|r| r.target_db_cluster_identifier() == Some(SECONDARY_ARN))
        .sequence()
        .output(|| SwitchoverGlobalClusterOutput::builder().build())
        .http_status(
            400,
            Some(
                "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidGlobalClusterStateFault</Code>\
                 <Message>The global cluster is already switching over</Message></Error></ErrorResponse>"
                    .into(),
            ),
        )
        .build();
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&clusters, &failover, &switchover]);
    let standby = RdsStandby::new(rds);
    assert_eq!(standby.promote(&aurora(), true).await.unwrap(), Promotion::Accepted);
    assert_eq!(
        standby.promote(&aurora(), true).await.expect("an answer, not an error"),
        Promotion::NotNow {
            code: "InvalidGlobalClusterStateFault".into(),
            message: "The global cluster is already switching over".into()
        },
        "AWS's reason is kept for the caller to tell under way from busy"
    );
    assert_eq!((switchover.num_calls(), failover.num_calls()), (2, 0));
}

#[tokio::test]
async fn the_primary_probe_tells_unreachable_from_unknown() {
    // Every attempt of every round fails: unreachable. Two attempts per round, three rounds.
    let outage = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .sequence()
        .http_status(503, None)
        .times(6)
        .build();
    let probe = RdsPrimaryProbe::with_client(mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&outage], |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(2))))
    .spacing(std::time::Duration::ZERO);
    assert!(matches!(probe.primary(&aurora()).await, PrimaryView::Unreachable(_)));
    assert_eq!(outage.num_calls(), 6);

    // A bad round, then an answer: one 5xx is not an outage, and rebooting is maintenance.
    let blip = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .sequence()
        .http_status(503, None)
        .times(2)
        .output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(DbCluster::builder().status("rebooting").build())
                .build()
        })
        .build();
    let probe = RdsPrimaryProbe::with_client(mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&blip], |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(2))))
    .spacing(std::time::Duration::ZERO);
    assert_eq!(probe.primary(&aurora()).await, PrimaryView::Planned("rebooting".into()));

    let denied = mock!(aws_sdk_rds::Client::describe_db_clusters).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(403).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>",
            ),
        )
    });
    let probe = RdsPrimaryProbe::with_client(mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&denied]));
    assert!(matches!(probe.primary(&aurora()).await, PrimaryView::Unknown(why) if why.contains("AccessDenied")));
}

#[tokio::test]
async fn health_checkers_are_counted() {
    // moto reports every checker healthy; AWS reports each checker region's verdict.
    let observation = |ok: bool| {
        HealthCheckObservation::builder()
            .region(aws_sdk_route53::types::HealthCheckRegion::UsWest1)
            .status_report(
                StatusReport::builder()
                    .status(if ok {
                        "Success: HTTP Status Code 200, OK"
                    } else {
                        "Failure: Connection timed out."
                    })
                    .build(),
            )
            .build()
    };
    let status = mock!(aws_sdk_route53::Client::get_health_check_status).then_output(move || {
        GetHealthCheckStatusOutput::builder()
            .health_check_observations(observation(false))
            .health_check_observations(observation(false))
            .health_check_observations(observation(false))
            .health_check_observations(observation(true))
            .build()
            .unwrap()
    });
    let route53 = Route53::with_client(mock_client!(aws_sdk_route53, RuleMode::MatchAny, [&status]));
    assert_eq!(
        route53.checkers("abc").await.unwrap(),
        Checkers { failing: 3, total: 4 }
    );
}

fn rds_replica() -> Standby {
    Standby::RdsReplica {
        primary: "orders-db".into(),
        replica: "orders-db-dr".into(),
    }
}

fn instance(id: &str, engine: &str, group: &str) -> aws_sdk_rds::types::DbInstance {
    aws_sdk_rds::types::DbInstance::builder()
        .db_instance_identifier(id)
        .engine(engine)
        .db_parameter_groups(
            aws_sdk_rds::types::DbParameterGroupStatus::builder()
                .db_parameter_group_name(group)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn writes_are_blocked_only_where_drpilot_can_prove_the_replica_caught_up_and_nothing_else_is_hit() {
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::operation::modify_db_parameter_group::ModifyDbParameterGroupOutput;
    let probe = |instances: Vec<aws_sdk_rds::types::DbInstance>| {
        let describe = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(move || {
            DescribeDbInstancesOutput::builder()
                .set_db_instances(Some(instances.clone()))
                .build()
        });
        let modify = mock!(aws_sdk_rds::Client::modify_db_parameter_group)
            .match_requests(|r| {
                r.db_parameter_group_name() == Some("orders-params")
                    && r.parameters()
                        .iter()
                        .any(|p| p.parameter_name() == Some("read_only") && p.parameter_value() == Some("1"))
            })
            .then_output(|| ModifyDbParameterGroupOutput::builder().build());
        let client = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&describe, &modify]);
        (RdsPrimaryProbe::with_client(client), modify)
    };
    // MySQL with its own group: read_only=1, applied at once
    let (p, modify) = probe(vec![instance("orders-db", "mysql", "orders-params")]);
    let how = p.block_writes(&rds_replica()).await.unwrap();
    assert!(how.contains("read_only=1 in parameter group orders-params"), "{how}");
    assert_eq!(modify.num_calls(), 1);
    // PostgreSQL: its ReplicaLag cannot show "caught up" on an idle primary
    let (p, modify) = probe(vec![instance("orders-db", "postgres", "orders-params")]);
    let e = p.block_writes(&rds_replica()).await.unwrap_err();
    assert!(
        matches!(&e, drpilot::error::Error::Refused(why) if why.contains("planned=false")),
        "{e}"
    );
    assert_eq!(modify.num_calls(), 0);
    // a default group cannot be changed; a shared one would freeze other instances too
    let (p, _) = probe(vec![instance("orders-db", "mysql", "default.mysql8.0")]);
    assert!(p.block_writes(&rds_replica()).await.is_err());
    let (p, modify) = probe(vec![
        instance("orders-db", "mysql", "orders-params"),
        instance("billing-db", "mysql", "orders-params"),
    ]);
    let e = p.block_writes(&rds_replica()).await.unwrap_err();
    assert!(e.to_string().contains("shared with billing-db"), "{e}");
    assert_eq!(modify.num_calls(), 0, "nothing changed");
}

#[tokio::test]
async fn maintenance_being_applied_is_reported_one_waiting_for_its_window_is_not() {
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::operation::describe_events::DescribeEventsOutput;
    use aws_sdk_rds::operation::describe_pending_maintenance_actions::DescribePendingMaintenanceActionsOutput;
    use aws_sdk_rds::types::{DbInstance, Event, PendingMaintenanceAction, ResourcePendingMaintenanceActions};
    use chrono::Duration;
    let at = |t: chrono::DateTime<chrono::Utc>| aws_smithy_types::DateTime::from_millis(t.timestamp_millis());
    let now = chrono::Utc::now();
    let ddd = |t: chrono::DateTime<chrono::Utc>| t.format("%a:%H:%M").to_string().to_lowercase();
    let window_now = format!(
        "{}-{}",
        ddd(now - Duration::minutes(10)),
        ddd(now + Duration::minutes(20))
    );
    let window_later = format!("{}-{}", ddd(now + Duration::hours(2)), ddd(now + Duration::hours(3)));
    let action = move |name: &str, due: Option<chrono::DateTime<chrono::Utc>>, opt_in: Option<&str>| {
        PendingMaintenanceAction::builder()
            .action(name)
            .description(format!("{name} description"))
            .set_current_apply_date(due.map(at))
            .set_opt_in_status(opt_in.map(str::to_string))
            .build()
    };
    let since = now - Duration::minutes(5);
    let probe_in = |window: String| {
        let described = mock!(aws_sdk_rds::Client::describe_db_instances)
            .match_requests(|r| r.db_instance_identifier() == Some("orders-db"))
            .then_output(move || {
                DescribeDbInstancesOutput::builder()
                    .db_instances(
                        DbInstance::builder()
                            .preferred_maintenance_window(window.clone())
                            .build(),
                    )
                    .build()
            });
        let pending = mock!(aws_sdk_rds::Client::describe_pending_maintenance_actions)
            .match_requests(|r| {
                r.filters()
                    .iter()
                    .any(|f| f.name() == Some("db-instance-id") && f.values() == ["orders-db"])
            })
            .then_output(move || {
                DescribePendingMaintenanceActionsOutput::builder()
                    .pending_maintenance_actions(
                        ResourcePendingMaintenanceActions::builder()
                            .resource_identifier("arn:aws:rds:us-east-1:123456789012:db:orders-db")
                            .pending_maintenance_action_details(action(
                                "system-update",
                                Some(now - Duration::days(2)),
                                Some("next-maintenance"),
                            ))
                            .pending_maintenance_action_details(action(
                                "db-upgrade",
                                Some(now + Duration::days(6)),
                                Some("next-maintenance"),
                            ))
                            .pending_maintenance_action_details(action(
                                "ca-certificate-rotation",
                                None,
                                Some("immediate"),
                            ))
                            .pending_maintenance_action_details(action("hardware-maintenance", None, None))
                            .build(),
                    )
                    .build()
            });
        let events = mock!(aws_sdk_rds::Client::describe_events)
            .match_requests(move |r| {
                r.source_identifier() == Some("orders-db")
                    && r.source_type() == Some(&aws_sdk_rds::types::SourceType::DbInstance)
                    && r.event_categories() == ["maintenance"]
                    && r.start_time() == Some(&at(since))
            })
            .then_output(move || {
                DescribeEventsOutput::builder()
                    .events(
                        Event::builder()
                            .message("Applying off-line patches to DB instance")
                            .date(at(now - Duration::minutes(2)))
                            .build(),
                    )
                    .build()
            });
        RdsPrimaryProbe::with_client(mock_client!(
            aws_sdk_rds,
            RuleMode::MatchAny,
            [&described, &pending, &events]
        ))
    };
    // In its maintenance window, a due action is being applied; a later one and one without
    // dates are not; "immediate" is. The event is passed on with its time.
    let report = probe_in(window_now.clone()).maintenance(&rds_replica(), since).await;
    assert_eq!(report.applying.len(), 2, "{report:#?}");
    assert!(report.applying[0].starts_with("pending maintenance system-update (system-update description), due "));
    assert!(report.applying[0].contains(&format!("in the maintenance window {window_now}")));
    assert!(report.applying[1].contains("ca-certificate-rotation") && report.applying[1].contains("immediately"));
    assert_eq!(report.events.len(), 1);
    assert_eq!(report.events[0].1, "Applying off-line patches to DB instance");
    assert!(report.unread.is_empty());
    // Out of its window, the due action waits (up to a week): not maintenance under way.
    let report = probe_in(window_later).maintenance(&rds_replica(), since).await;
    assert_eq!(report.applying.len(), 1, "{report:#?}");
    assert!(report.applying[0].contains("ca-certificate-rotation"));

    // One read failing does not hide the others, and is said.
    let described =
        mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| DescribeDbInstancesOutput::builder().build());
    let refused = mock!(aws_sdk_rds::Client::describe_pending_maintenance_actions).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(403).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>",
            ),
        )
    });
    let events = mock!(aws_sdk_rds::Client::describe_events).then_output(move || {
        DescribeEventsOutput::builder()
            .events(
                Event::builder()
                    .message("Applying off-line patches to DB instance")
                    .date(at(now))
                    .build(),
            )
            .build()
    });
    let probe = RdsPrimaryProbe::with_client(mock_client!(
        aws_sdk_rds,
        RuleMode::MatchAny,
        [&described, &refused, &events]
    ));
    let report = probe.maintenance(&rds_replica(), since).await;
    assert_eq!(report.events.len(), 1, "{report:#?}");
    assert!(
        report.unread.len() == 1 && report.unread[0].contains("DescribePendingMaintenanceActions"),
        "{report:#?}"
    );
}

/// A failback's instance work, over a mocked RDS: a deletion AWS already has under way is no
/// error (a resumed failback asks again), anything else AWS refuses is; the final snapshot is
/// always asked for; a replica AWS refuses keeps AWS's code; writes are given back through the
/// instance's own group with RDS's default formula, and a default group is left alone; whether
/// writes can be blocked is known without changing anything.
#[tokio::test]
async fn failback_instances_retire_with_a_final_snapshot_and_answer_as_aws_does() {
    use aws_sdk_rds::operation::create_db_instance_read_replica::CreateDBInstanceReadReplicaError;
    use aws_sdk_rds::operation::delete_db_instance::{DeleteDBInstanceError, DeleteDbInstanceOutput};
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
    use aws_sdk_rds::operation::modify_db_parameter_group::ModifyDbParameterGroupOutput;
    use aws_sdk_rds::types::error::{InvalidDbInstanceStateFault, KmsKeyNotAccessibleFault};
    use drpilot::ports::{Instances, ReplicaRequest, RestoreStarted};

    let with_status = |id: &str, status: &str, group: &str| {
        let mut i = instance(id, "mysql", group);
        i.db_instance_status = Some(status.to_string());
        i
    };
    let delete = mock!(aws_sdk_rds::Client::delete_db_instance)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("old")
                && r.skip_final_snapshot() == Some(false)
                && r.final_db_snapshot_identifier() == Some("old-before-failback-1")
                && r.delete_automated_backups() == Some(false)
        })
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    let busy = mock!(aws_sdk_rds::Client::delete_db_instance)
        .match_requests(|r| matches!(r.db_instance_identifier(), Some("deleting") | Some("stopping")))
        .then_error(move || {
            DeleteDBInstanceError::InvalidDbInstanceStateFault(
                InvalidDbInstanceStateFault::builder()
                    .message("not now")
                    .meta(meta("InvalidDBInstanceState", "not now"))
                    .build(),
            )
        });
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| {
        DescribeDbInstancesOutput::builder()
            .db_instances(
                aws_sdk_rds::types::DbInstance::builder()
                    .db_instance_identifier("x")
                    .db_instance_status("deleting")
                    .build(),
            )
            .build()
    });
    let stopping = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(|r| r.db_instance_identifier() == Some("stopping"))
        .then_output(move || {
            DescribeDbInstancesOutput::builder()
                .db_instances(with_status("stopping", "stopping", "p"))
                .build()
        });
    let snapshot =
        mock!(aws_sdk_rds::Client::describe_db_snapshots).then_output(|| DescribeDbSnapshotsOutput::builder().build());
    let refused = mock!(aws_sdk_rds::Client::create_db_instance_read_replica).then_error(move || {
        CreateDBInstanceReadReplicaError::KmsKeyNotAccessibleFault(
            KmsKeyNotAccessibleFault::builder()
                .message("key disabled")
                .meta(meta("KMSKeyNotAccessibleFault", "key disabled"))
                .build(),
        )
    });
    let client = mock_client!(
        aws_sdk_rds,
        RuleMode::MatchAny,
        [&delete, &busy, &stopping, &describe, &snapshot, &refused]
    );
    let rds = RdsPrimaryProbe::with_client(client);
    rds.retire("old", "old-before-failback-1").await.unwrap();
    assert_eq!(delete.num_calls(), 1, "deleted with its final snapshot");
    rds.retire("deleting", "s")
        .await
        .expect("already being deleted: an earlier request's");
    let e = rds.retire("stopping", "s").await.unwrap_err().to_string();
    assert!(
        e.contains("DeleteDBInstance") && e.contains("InvalidDBInstanceState"),
        "{e}"
    );
    let req = ReplicaRequest {
        id: "orders-db".into(),
        source_arn: "arn:aws:rds:us-west-2:123456789012:db:orders-db-dr".into(),
        shape: drpilot::model::InstanceShape {
            kms_key_id: Some("alias/gone".into()),
            class: "db.r6g.large".into(),
            ..Default::default()
        },
    };
    match rds.create_replica(&req).await.unwrap() {
        RestoreStarted::Refused { code, message } => {
            assert_eq!(code, "KMSKeyNotAccessibleFault");
            assert!(message.contains("key disabled"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // writes given back: RDS's own formula, in the instance's own group only
    let describe = |group: &'static str| {
        mock!(aws_sdk_rds::Client::describe_db_instances).then_output(move || {
            DescribeDbInstancesOutput::builder()
                .db_instances(with_status("orders-db", "available", group))
                .build()
        })
    };
    let modify = mock!(aws_sdk_rds::Client::modify_db_parameter_group)
        .match_requests(|r| {
            r.db_parameter_group_name() == Some("orders-params")
                && r.parameters()
                    .iter()
                    .any(|p| p.parameter_name() == Some("read_only") && p.parameter_value() == Some("{TrueIfReplica}"))
        })
        .then_output(|| ModifyDbParameterGroupOutput::builder().build());
    let own = describe("orders-params");
    let rds = RdsStandby::new(mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&own, &modify]));
    let how = rds.allow_writes_in("orders-params").await.unwrap();
    assert!(how.contains("{TrueIfReplica}"), "{how}");
    assert_eq!(modify.num_calls(), 1);
    rds.allow_writes_in("default.mysql8.0").await.unwrap();
    assert_eq!(modify.num_calls(), 1, "a default group is not touched");
    // the checks come before anything is changed: a shared group is refused, nothing asked
    let shared = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(move || {
        DescribeDbInstancesOutput::builder()
            .db_instances(with_status("orders-db", "available", "orders-params"))
            .db_instances(with_status("billing-db", "available", "orders-params"))
            .build()
    });
    let rds = RdsStandby::new(mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&shared, &modify]));
    let e = rds.can_block_writes("orders-db").await.unwrap_err().to_string();
    assert!(e.contains("shared with billing-db"), "{e}");
    assert_eq!(modify.num_calls(), 1);
}

fn meta(code: &str, message: &str) -> aws_sdk_rds::error::ErrorMetadata {
    aws_sdk_rds::error::ErrorMetadata::builder()
        .code(code)
        .message(message)
        .build()
}
