//! `eventsys init` on tables an earlier version made: what this version
//! reads (indexes, TTL) is added in place, and running it again changes
//! nothing. DynamoDB only: the embedded store has no schema to migrate.

use aws_sdk_dynamodb::{
    Client,
    config::{BehaviorVersion, Credentials, Region},
    types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification, TimeToLiveStatus,
    },
};
use eventsys_store_dynamodb::{DynamoConfig, DynamoStore};
use eventsys_tests::{Services, unique};

fn config() -> DynamoConfig {
    let services = Services::from_env();
    DynamoConfig {
        endpoint: Some(services.dynamodb),
        table_prefix: format!("m{}_{}_", services.run.replace('-', "_"), unique()),
        local_credentials: true,
        ..Default::default()
    }
}

fn client(config: &DynamoConfig) -> Client {
    let sdk = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(config.endpoint.clone().unwrap())
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .build();
    Client::from_conf(sdk)
}

/// A table with only its key, as a first version would have made it.
async fn bare_table(client: &Client, name: &str, hash: &str) {
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(hash)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(hash)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

async fn indexes(client: &Client, table: &str) -> Vec<String> {
    let described = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = described
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name().map(str::to_owned))
        .collect();
    names.sort();
    names
}

async fn ttl(client: &Client, table: &str) -> (Option<TimeToLiveStatus>, Option<String>) {
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .unwrap();
    let ttl = described.time_to_live_description();
    (
        ttl.and_then(|t| t.time_to_live_status().cloned()),
        ttl.and_then(|t| t.attribute_name().map(str::to_owned)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_adds_the_indexes_and_ttl_an_earlier_version_lacked() {
    let config = config();
    let raw = client(&config);
    let (tickets, commands) = (
        format!("{}tickets", config.table_prefix),
        format!("{}commands", config.table_prefix),
    );
    bare_table(&raw, &tickets, "ticket_id").await;
    bare_table(&raw, &commands, "command_id").await;
    raw.put_item()
        .table_name(&tickets)
        .item(
            "ticket_id",
            aws_sdk_dynamodb::types::AttributeValue::S("kept".into()),
        )
        .send()
        .await
        .unwrap();

    let store = DynamoStore::connect(&config).await;
    store.create_tables().await.expect("migrating the tables");
    assert_eq!(indexes(&raw, &tickets).await, ["by_event", "by_holder"]);
    assert_eq!(indexes(&raw, &commands).await, ["pending"]);
    assert_eq!(
        ttl(&raw, &commands).await,
        (
            Some(TimeToLiveStatus::Enabled),
            Some("forget_at_epoch".into())
        )
    );
    // What was there stays there.
    let kept = raw
        .get_item()
        .table_name(&tickets)
        .key(
            "ticket_id",
            aws_sdk_dynamodb::types::AttributeValue::S("kept".into()),
        )
        .send()
        .await
        .unwrap();
    assert!(kept.item().is_some());

    // Again, from another replica: nothing to do, nothing fails.
    DynamoStore::connect(&config)
        .await
        .create_tables()
        .await
        .expect("running init twice");
    assert_eq!(indexes(&raw, &tickets).await, ["by_event", "by_holder"]);
    store.delete_tables().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_refuses_to_replace_a_ttl_on_another_attribute() {
    let config = config();
    let raw = client(&config);
    let idempotency = format!("{}idempotency", config.table_prefix);
    bare_table(&raw, &idempotency, "key_hash").await;
    raw.update_time_to_live()
        .table_name(&idempotency)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("old_expiry")
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let store = DynamoStore::connect(&config).await;
    let refused = store
        .create_tables()
        .await
        .expect_err("a TTL it may not replace");
    assert!(refused.to_string().contains("old_expiry"), "{refused}");
    assert_eq!(
        ttl(&raw, &idempotency).await,
        (Some(TimeToLiveStatus::Enabled), Some("old_expiry".into()))
    );
    store.delete_tables().await.unwrap();
}
