use super::*;

#[test]
fn the_secret_json_takes_a_comma_separated_string_or_a_list() {
    let one =
        StripeSecrets::parse(r#"{"secret_key":"sk_test_1","webhook_secrets":"whsec_a, whsec_b"}"#);
    assert!(one.as_ref().is_ok_and(|s| s.webhook_secrets.len() == 2));
    let list = StripeSecrets::parse(r#"{"secret_key":"sk_test_1","webhook_secrets":["whsec_a"]}"#);
    assert!(list.as_ref().is_ok_and(|s| s.webhook_secrets.len() == 1));
    let none = StripeSecrets::parse(r#"{"secret_key":"sk_test_1"}"#);
    assert!(none.as_ref().is_ok_and(|s| s.webhook_secrets.is_empty()));
}

#[test]
fn a_bad_secret_is_named_by_field_and_never_echoed() {
    let empty = StripeSecrets::parse(r#"{"secret_key":" "}"#).err();
    assert!(empty.is_some_and(|e| e.contains("secret_key")));
    let plain = StripeSecrets::parse("sk_live_supersecret").err();
    assert!(plain.is_some_and(|e| !e.contains("supersecret") && e.contains("JSON object")));
    let typo = StripeSecrets::parse(r#"{"secret_key":"sk_1","webhook_secret":"whsec_x"}"#).err();
    assert!(
        typo.as_ref().is_some_and(
            |e| !e.contains("whsec_x") && e.contains("unknown field `webhook_secret`")
        ),
        "{typo:?}"
    );
    let missing = StripeSecrets::parse(r#"{"webhook_secrets":"whsec_x"}"#).err();
    assert!(
        missing
            .as_ref()
            .is_some_and(|e| e.contains("missing field `secret_key`")),
        "{missing:?}"
    );
    let as_name = StripeSecrets::parse(r#"{"sk_live_supersecret":""}"#).err();
    assert!(
        as_name.as_ref().is_some_and(|e| !e.contains("supersecret")),
        "{as_name:?}"
    );
    let wrong_type = StripeSecrets::parse(r#"{"secret_key":["sk_live_supersecret"]}"#).err();
    assert!(
        wrong_type
            .as_ref()
            .is_some_and(|e| !e.contains("supersecret")),
        "{wrong_type:?}"
    );
}

/// A secret whose text the test changes, counting reads; `None` fails the read.
#[derive(Clone, Default)]
struct Changing {
    text: Arc<std::sync::Mutex<Option<String>>>,
    reads: Arc<std::sync::atomic::AtomicU32>,
}

impl Changing {
    fn set(&self, text: Option<&str>) {
        if let Ok(mut t) = self.text.lock() {
            *t = text.map(str::to_owned);
        }
    }

    fn reads(&self) -> u32 {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl SecretStore for Changing {
    fn fetch(&self) -> SecretFuture<'_> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let text = self.text.lock().ok().and_then(|t| t.clone());
        Box::pin(async move {
            text.ok_or_else(|| PortError::new("read secret", "Secrets Manager is down"))
        })
    }

    fn name(&self) -> String {
        "arn:test".into()
    }
}

fn whsec(loaded: &Loaded) -> Vec<WebhookSecret> {
    loaded.secrets.webhook_secrets.clone()
}

fn secret(key: &str, whsec: &str) -> String {
    serde_json::json!({"secret_key": key, "webhook_secrets": whsec}).to_string()
}

#[tokio::test(start_paused = true)]
async fn secrets_are_read_on_first_use_cached_five_minutes_then_read_again() -> Result<(), PortError>
{
    let store = Changing::default();
    store.set(Some(&secret("sk_test_1", "whsec_a")));
    let source = StripeSecretSource::new(store.clone(), None);
    assert_eq!(store.reads(), 0, "nothing is read before first use");
    let first = source.current().await?;
    store.set(Some(&secret("sk_test_1", "whsec_b")));
    tokio::time::advance(Duration::from_secs(299)).await;
    let cached = source.current().await?;
    assert_eq!(store.reads(), 1);
    assert_eq!(whsec(&cached), whsec(&first));
    tokio::time::advance(Duration::from_secs(2)).await;
    let fresh = source.current().await?;
    assert_eq!(store.reads(), 2);
    assert_eq!(
        fresh.secrets.webhook_secrets,
        vec![WebhookSecret::parse("whsec_b").map_err(|e| PortError::new("parse", e))?]
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_forced_refresh_reads_at_most_every_ten_seconds_and_says_whether_anything_changed()
-> Result<(), PortError> {
    let store = Changing::default();
    store.set(Some(&secret("sk_test_1", "whsec_a")));
    let source = StripeSecretSource::new(store.clone(), None);
    source.current().await?;
    store.set(Some(&secret("sk_test_1", "whsec_b")));
    // A forged flood right after the first read: no extra reads.
    for _ in 0..100 {
        assert!(source.refresh().await?.is_none());
    }
    assert_eq!(store.reads(), 1);
    tokio::time::advance(MIN_REFRESH_INTERVAL).await;
    let changed = source.refresh().await?;
    assert!(changed.is_some_and(|l| l.secrets.webhook_secrets.len() == 1));
    assert_eq!(store.reads(), 2);
    tokio::time::advance(MIN_REFRESH_INTERVAL).await;
    assert!(source.refresh().await?.is_none(), "read again, nothing new");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_secret_keeps_the_cached_one_and_fails_only_with_nothing_cached()
-> Result<(), PortError> {
    let store = Changing::default();
    let source = StripeSecretSource::new(store.clone(), None);
    let none = source
        .current()
        .await
        .err()
        .map(|e| format!("{:#}", anyhow::Error::from(e)));
    assert!(
        none.is_some_and(|e| e.contains("down")),
        "no secret yet: an error"
    );
    store.set(Some(&secret("sk_test_1", "whsec_a")));
    tokio::time::advance(MIN_REFRESH_INTERVAL).await;
    let loaded = source.current().await?;
    store.set(None);
    tokio::time::advance(DEFAULT_TTL).await;
    let stale = source.current().await?;
    assert!(
        Arc::ptr_eq(&loaded, &stale),
        "the cached secret stays in use"
    );
    let reads = store.reads();
    source.current().await?;
    assert_eq!(
        store.reads(),
        reads,
        "not asked again at once after a failure"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn with_nothing_readable_a_flood_reads_at_most_once_per_interval_and_says_why() {
    let store = Changing::default();
    // What the stack holds right after `sam deploy`: the placeholder.
    store.set(Some(r#"{"secret_key":"","webhook_secrets":""}"#));
    let source = StripeSecretSource::new(store.clone(), None);
    for _ in 0..100 {
        let e = source
            .current()
            .await
            .err()
            .map(|e| domain::ports::error_chain(&e));
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("`secret_key` is empty")),
            "{e:?}"
        );
    }
    assert_eq!(store.reads(), 1);
    tokio::time::advance(MIN_REFRESH_INTERVAL).await;
    assert!(source.current().await.is_err());
    assert_eq!(store.reads(), 2, "asked again after the interval");
    store.set(Some(&secret("sk_test_1", "whsec_a")));
    tokio::time::advance(MIN_REFRESH_INTERVAL).await;
    assert!(
        source.current().await.is_ok(),
        "a fixed secret is used at once"
    );
}

#[tokio::test(start_paused = true)]
async fn the_stripe_client_is_rebuilt_only_when_the_key_changes() -> Result<(), PortError> {
    let store = Changing::default();
    store.set(Some(&secret("sk_test_1", "whsec_a")));
    let source = StripeSecretSource::new(store.clone(), None);
    let a = source.current().await?;
    store.set(Some(&secret("sk_test_2", "whsec_a")));
    tokio::time::advance(DEFAULT_TTL).await;
    let b = source.current().await?;
    assert_eq!(b.secrets.secret_key.expose_secret(), "sk_test_2");
    assert!(!Arc::ptr_eq(&a, &b));
    Ok(())
}
