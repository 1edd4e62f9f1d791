//! The end-to-end harness: [`Stack::start`] runs `scripts/dev` (the same script a developer
//! runs) on free ports with its own state directory, waits until it is ready, and hands out
//! clients for moto, the stripe-emulator and `cargo lambda watch`. Dropping the stack stops
//! `scripts/dev` by its PID, which stops every process it started.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub mod faults;
pub mod proxy;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `scripts/dev` as a child process; dropping it stops the whole stack by its PID.
struct Dev(Child);

impl Drop for Dev {
    fn drop(&mut self) {
        // SIGTERM lets scripts/dev stop everything it started; SIGKILL only if it hangs.
        let pid = self.0.id().to_string();
        // bash's builtin kill: no dependency on procps being installed.
        let _ = Command::new("bash")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Stack {
    _dev: Dev,
    pub env: HashMap<String, String>,
    pub state_dir: PathBuf,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub stripe: stripe::Client,
}

fn tail_logs(state_dir: &Path) -> String {
    let mut out = String::new();
    for name in ["dev.log", "moto.log", "stripe-emulator.log", "watch.log"] {
        if let Ok(text) = std::fs::read_to_string(state_dir.join(name)) {
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("--- {name} (last 40 lines)\n"));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// What a test changes about the stack it starts.
#[derive(Debug, Default)]
pub struct StackOptions {
    /// moto's port (a free one if `None`), for a test that puts something in front of it.
    pub moto_port: Option<u16>,
    /// The stripe-emulator's port (a free one if `None`), likewise.
    pub emulator_port: Option<u16>,
    /// Extra variables for scripts/dev (e.g. `AWS_ENDPOINT_URL_DYNAMODB`, which it hands to the
    /// functions only).
    pub env: Vec<(String, String)>,
}

impl Stack {
    /// Starts the whole local stack. `free_period_seconds` replaces the Free plan's week.
    pub async fn start(name: &str, free_period_seconds: u64) -> anyhow::Result<Self> {
        Self::start_with(name, free_period_seconds, StackOptions::default()).await
    }

    pub async fn start_with(
        name: &str,
        free_period_seconds: u64,
        options: StackOptions,
    ) -> anyhow::Result<Self> {
        let state_dir = target_dir()
            .join("e2e")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state_dir);
        std::fs::create_dir_all(&state_dir)?;
        let log = std::fs::File::create(state_dir.join("dev.log"))?;
        let mut dev = Dev(Command::new(workspace_root().join("scripts/dev"))
            .env(
                "MOTO_PORT",
                options.moto_port.map_or_else(free_port, Ok)?.to_string(),
            )
            .envs(options.env)
            .env(
                "STRIPE_EMULATOR_PORT",
                options
                    .emulator_port
                    .map_or_else(free_port, Ok)?
                    .to_string(),
            )
            .env("WATCH_PORT", free_port()?.to_string())
            .env("FREE_PERIOD_SECONDS", free_period_seconds.to_string())
            .env("CREDITGATE_STATE_DIR", &state_dir)
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start scripts/dev")?);

        let deadline = Instant::now() + Duration::from_secs(600);
        while !state_dir.join("ready").exists() {
            if let Some(status) = dev.0.try_wait()? {
                bail!(
                    "scripts/dev exited ({status}) before the stack was ready:\n{}",
                    tail_logs(&state_dir)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the stack was not ready within 600s:\n{}",
                    tail_logs(&state_dir)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let text = std::fs::read_to_string(state_dir.join("env"))?;
        let env: HashMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let get = |name: &str| {
            env.get(name)
                .cloned()
                .with_context(|| format!("{name} missing from the env file"))
        };
        let conf = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(get("AWS_ENDPOINT_URL")?)
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "e2e"),
            ))
            .http_client(adapters::aws::http_client())
            .build();
        let stripe = stripe::ClientBuilder::new(get("STRIPE_SECRET_KEY")?)
            .url(get("STRIPE_API_BASE")?)
            .build()?;
        Ok(Self {
            _dev: dev,
            dynamodb: aws_sdk_dynamodb::Client::new(&conf),
            sfn: aws_sdk_sfn::Client::new(&conf),
            cognito: aws_sdk_cognitoidentityprovider::Client::new(&conf),
            stripe,
            env,
            state_dir,
        })
    }

    pub fn logs(&self) -> String {
        tail_logs(&self.state_dir)
    }

    pub fn var(&self, name: &str) -> anyhow::Result<String> {
        self.env
            .get(name)
            .cloned()
            .with_context(|| format!("{name} missing from the stack's env file"))
    }

    /// `creditgate-dev signup <email>` (what Cognito and the PostConfirmation trigger do),
    /// then the new user's sub from Cognito.
    pub async fn sign_up(&self, email: &str) -> anyhow::Result<domain::ids::UserSub> {
        let out = self.creditgate_dev(&["signup", email])?;
        anyhow::ensure!(
            out.status.success(),
            "signup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let user = self
            .cognito
            .admin_get_user()
            .user_pool_id(self.var("USER_POOL_ID")?)
            .username(email)
            .send()
            .await?;
        Ok(domain::ids::UserSub::parse(
            user.user_attributes()
                .iter()
                .find(|a| a.name() == "sub")
                .and_then(|a| a.value())
                .unwrap_or_default(),
        )?)
    }

    /// Runs the operator's `creditgate` CLI with the stack's environment.
    pub fn creditgate(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        self.creditgate_with(args, &[])
    }

    pub fn creditgate_with(
        &self,
        args: &[&str],
        overrides: &[(&str, &str)],
    ) -> anyhow::Result<std::process::Output> {
        self.run_binary("creditgate", args, overrides)
    }

    /// Runs the local stack's helpers, `creditgate-dev` (sign-up, API key, checkout).
    pub fn creditgate_dev(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        self.run_binary("creditgate-dev", args, &[])
    }

    fn run_binary(
        &self,
        binary: &str,
        args: &[&str],
        overrides: &[(&str, &str)],
    ) -> anyhow::Result<std::process::Output> {
        let mut cmd = Command::new(target_dir().join("debug").join(binary));
        cmd.args(args).envs(&self.env).current_dir(workspace_root());
        for (k, v) in overrides {
            cmd.env(k, v);
        }
        cmd.output().with_context(|| format!("run {binary}"))
    }

    /// POSTs an event to a function through `cargo lambda watch`'s invoke API.
    /// A function that never answers fails the call after two minutes instead of hanging.
    pub async fn invoke(
        &self,
        function: &str,
        event: &serde_json::Value,
    ) -> anyhow::Result<(u16, String)> {
        tokio::time::timeout(Duration::from_secs(120), self.invoke_inner(function, event))
            .await
            .with_context(|| format!("{function} did not answer within 120s\n{}", self.logs()))?
    }

    async fn invoke_inner(
        &self,
        function: &str,
        event: &serde_json::Value,
    ) -> anyhow::Result<(u16, String)> {
        let base = self.var("LAMBDA_INVOKE_URL")?;
        let path = format!("/2015-03-31/functions/{function}/invocations");
        let (status, _, body) = http(&base, "POST", &path, &[], &event.to_string()).await?;
        Ok((status, body))
    }

    /// A call to the stack's stripe-emulator with its key (test routes included); a non-2xx
    /// answer is an error carrying the body.
    pub async fn emulator(
        &self,
        method: &str,
        path: &str,
        body: &str,
    ) -> anyhow::Result<serde_json::Value> {
        stripe_emulator::client::call(
            &self.var("STRIPE_API_BASE")?,
            &self.var("STRIPE_SECRET_KEY")?,
            method,
            path,
            body,
        )
        .await
    }

    /// Deletes the emulator's first webhook endpoint (the stack's own, registered by
    /// scripts/dev): from then on Stripe sends the webhook nothing.
    pub async fn delete_webhook_endpoint(&self) -> anyhow::Result<()> {
        let endpoints = self.emulator("GET", "/v1/webhook_endpoints", "").await?;
        let endpoint = endpoints["data"][0]["id"].as_str().unwrap_or_default();
        self.emulator("DELETE", &format!("/v1/webhook_endpoints/{endpoint}"), "")
            .await?;
        Ok(())
    }

    /// Waits until the emulator has delivered every event it recorded (none pending).
    pub async fn all_delivered(&self, timeout: Duration) -> anyhow::Result<()> {
        let (base, key) = (self.var("STRIPE_API_BASE")?, self.var("STRIPE_SECRET_KEY")?);
        eventually(timeout, "every event delivered", || async {
            let events = stripe_emulator::client::events(&base, &key).await?;
            Ok(events
                .iter()
                .all(|e| e["pending_webhooks"] == 0)
                .then_some(()))
        })
        .await
    }

    /// Deliveries the webhook refused or failed (any status of 300 or more but 409, which means
    /// "being processed" and which Stripe retries), from the emulator's delivery log.
    pub async fn refused_deliveries(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let log = self.emulator("GET", "/_emulator/deliveries", "").await?;
        Ok(log["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|d| {
                d["status_code"]
                    .as_u64()
                    .is_some_and(|s| s >= 300 && s != 409)
            })
            .collect())
    }

    /// The credit manager's executions as (name, status), sorted by name.
    pub async fn executions(&self) -> anyhow::Result<Vec<(String, String)>> {
        let out = self
            .sfn
            .list_executions()
            .state_machine_arn(self.var("CREDIT_MANAGER_ARN")?)
            .send()
            .await?;
        let mut all: Vec<(String, String)> = out
            .executions()
            .iter()
            .map(|e| (e.name().to_owned(), e.status().as_str().to_owned()))
            .collect();
        all.sort();
        Ok(all)
    }
}

/// A request to `cargo lambda watch`'s function URLs (`/lambda-url/<function>/<path>`),
/// answered as (status, the head as text, body), through the tools' one HTTP client.
pub async fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<(u16, String, String)> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let answer = stripe_emulator::http::send(method, &url, &all, body, Duration::from_secs(120))
        .await
        .map_err(anyhow::Error::msg)?;
    let head = std::iter::once(format!("HTTP/1.1 {}", answer.status))
        .chain(answer.headers.iter().map(|(n, v)| format!("{n}: {v}")))
        .collect::<Vec<_>>()
        .join("\r\n");
    Ok((answer.status, head, answer.body))
}

/// Polls `check` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
